/**
 * The backprop kernels tfjs-backend-wasm 4.22 lacks (Conv2DBackpropFilter,
 * DepthwiseConv2dNativeBackpropInput, DepthwiseConv2dNativeBackpropFilter) or gets wrong
 * (MaxPoolGrad: a window without a positive value sends its gradient nowhere, tied maxima to the
 * last), registered for the wasm backend and written with ops it has. Without them the gradient
 * of any Conv2D, DepthwiseConv2D or SeparableConv2D layer throws "kernel not registered" on wasm,
 * whichever path (the Sequential fast step or a functional model's own layers) computes it.
 * Hand-written because no package provides them; each is tested against the cpu backend
 * (test/workers/training/layer-gradients.test.ts). Also Identity, which the wasm backend runs as a
 * copy, by reference.
 */
import tf = require('@tensorflow/tfjs');
import { windowsApart } from '../../../src/jobs/step-kernels.js';
import { conv2dKernelGrad } from '../network.js';
import { maxPoolGrad as windowsMaxPoolGrad, wasmKernels } from '../wasm-kernels.js';
import { spreadGradient, spreadRows } from './transposed.js';

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

interface ConvAttrs {
  strides: [number, number] | number;
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: [number, number] | number;
}

const pair = (v: [number, number] | number | undefined): [number, number] => (Array.isArray(v) ? v : [v ?? 1, v ?? 1]);

/** The forward's geometry, as tfjs computes it for every kind of padding. */
function geometry(inShape: Shape4, filterShape: Shape4, attrs: ConvAttrs, depthwise: boolean) {
  const dilations = pair(attrs.dilations);
  if (dilations[0] !== 1 || dilations[1] !== 1)
    throw new Error(`the gradient of a dilated convolution (dilations [${dilations.join(', ')}]) is not supported; expected dilation 1`);
  return tf.backend_util.computeConv2DInfo(inShape, filterShape, pair(attrs.strides), 1, attrs.pad, attrs.dimRoundingMode, depthwise);
}

/** x padded as the forward padded it: a "valid" convolution of the result is the forward's. */
function padded(x: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const { top, bottom, left, right } = info.padInfo;
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return x;
  return tf.pad(x, [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ]);
}

/** Conv2DBackpropFilter, through network.ts's conv2dKernelGrad (itself only forward convolutions). */
function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: ConvAttrs & { filterShape: Shape4; dataFormat: 'NHWC' | 'NCHW' }): tf.Tensor {
  if (attrs.dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter on wasm: expected NHWC data, got ${attrs.dataFormat}`);
  const strides = pair(attrs.strides);
  if (attrs.pad === 'same' || attrs.pad === 'valid') return conv2dKernelGrad(x, dy, attrs.filterShape, strides, attrs.pad);
  return conv2dKernelGrad(padded(x, geometry(x.shape, attrs.filterShape, attrs, false)), dy, attrs.filterShape, strides, 'valid');
}

/**
 * dx of a depthwise convolution with a [kh, kw, C, m] filter: dy's C·m channels each convolved
 * (depthwise, multiplier 1) with their own flipped kernel, then the m of each input channel summed.
 */
function depthwiseInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, attrs: ConvAttrs & { inputShape: Shape4 }): tf.Tensor {
  const [kh, kw, channels, multiplier] = filter.shape;
  const info = geometry(attrs.inputShape, filter.shape, attrs, true);
  const [batch, inH, inW] = attrs.inputShape;
  const { spread, pads } = spreadGradient(dy, { kh, kw, inH, inW, strides: pair(attrs.strides), padTop: info.padInfo.top, padLeft: info.padInfo.left });
  const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, channels * multiplier, 1]) as tf.Tensor4D;
  const dx = tf.depthwiseConv2d(spread, flipped, 1, pads);
  return multiplier === 1 ? dx : tf.sum(tf.reshape(dx, [batch, inH, inW, channels, multiplier]), 4);
}

/**
 * dW of a depthwise convolution: for each kernel position (p, q), the input window it saw
 * (a strided slice of the padded input) times dy, summed over batch and pixels. kh·kw
 * elementwise products the size of dy, rather than patches kh·kw times the input's size.
 */
function depthwiseFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: ConvAttrs & { filterShape: Shape4 }): tf.Tensor {
  const [kh, kw, channels, multiplier] = attrs.filterShape;
  const info = geometry(x.shape, attrs.filterShape, attrs, true);
  const xp = padded(x, info);
  const [sh, sw] = pair(attrs.strides);
  const [batch, outH, outW] = dy.shape;
  const dyByInput = tf.reshape(dy, [batch, outH, outW, channels, multiplier]);
  const positions: tf.Tensor[] = [];
  for (let p = 0; p < kh; p++) {
    for (let q = 0; q < kw; q++) {
      const window = tf.stridedSlice(xp, [0, p, q, 0], [batch, p + sh * (outH - 1) + 1, q + sw * (outW - 1) + 1, channels], [1, sh, sw, 1]);
      positions.push(tf.sum(tf.mul(tf.reshape(window, [batch, outH, outW, channels, 1]), dyByInput), [0, 1, 2]));
    }
  }
  return tf.reshape(tf.stack(positions), [kh, kw, channels, multiplier]);
}

/**
 * dx of max pooling, the gradient of each window going to its first maximum (as on the cpu
 * backend and in TensorFlow): for windows that do not overlap, unpadded, in our kernel
 * (../wasm-kernels.ts); else, for each pool position (p, q), the windows' values there (a strided
 * slice of the input padded with -Infinity) that equal the window's maximum and come first, times
 * dy, spread back to the input positions they were read from.
 */
function maxPoolGrad(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  attrs: { filterSize: [number, number] | number; strides: [number, number] | number; pad: Pad; dimRoundingMode?: 'floor' | 'round' | 'ceil' },
): tf.Tensor {
  const info = tf.backend_util.computePool2DInfo(x.shape, attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { top, bottom, left, right } = info.padInfo;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const wasm = wasmKernels();
  if (wasm !== undefined && windowsApart([kh, kw], [sh, sw], top + bottom + left + right > 0) && x.dtype === 'float32' && dy.dtype === 'float32') {
    return windowsMaxPoolGrad(wasm, x, dy, [kh, kw]);
  }
  const [batch, height, width, channels] = x.shape;
  const [, outH, outW] = dy.shape;
  const xp = tf.pad(
    x,
    [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ],
    -Infinity,
  );
  const [, padH, padW] = xp.shape;
  let taken: tf.Tensor = tf.zerosLike(dy);
  let dx: tf.Tensor = tf.zerosLike(xp);
  for (let p = 0; p < kh; p++) {
    for (let q = 0; q < kw; q++) {
      const window = tf.stridedSlice(xp, [0, p, q, 0], [batch, p + sh * (outH - 1) + 1, q + sw * (outW - 1) + 1, channels], [1, sh, sw, 1]);
      const first = tf.mul(tf.cast(tf.equal(window, y), 'float32'), tf.sub(1, taken));
      taken = tf.add(taken, first);
      const spread = spreadRows(tf.mul(first, dy) as tf.Tensor4D, batch, outH, outW, channels, sh, sw);
      const [rows, cols] = [Math.min(outH * sh, padH - p), Math.min(outW * sw, padW - q)];
      const cut = rows < outH * sh || cols < outW * sw ? tf.slice(spread, [0, 0, 0, 0], [batch, rows, cols, channels]) : spread;
      dx = tf.add(
        dx,
        tf.pad(cut, [
          [0, 0],
          [p, padH - p - rows],
          [q, padW - q - cols],
          [0, 0],
        ]),
      );
    }
  }
  return tf.slice(dx, [0, top, left, 0], [batch, height, width, channels]);
}

/**
 * A kernel computed by tfjs ops: its inputs wrapped as tensors (Identity takes a reference of
 * its own, so the wrappers' disposal leaves the caller's data alone), the result handed to the
 * engine with one reference added before the tidy's own copy is released.
 */
function opsKernel(name: string, compute: (inputs: tf.Tensor4D[], attrs: never) => tf.Tensor, inputNames: string[]): tf.KernelConfig {
  return {
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const out = tf.tidy(() => {
        const tensors = inputNames.map((n) => tf.engine().runKernel('Identity', { x: inputs[n] } as unknown as tf.NamedTensorMap) as tf.Tensor4D);
        return compute(tensors, attrs as never);
      });
      (backend as tf.KernelBackend).incRef(out.dataId);
      out.dispose();
      return { dataId: out.dataId, shape: out.shape, dtype: out.dtype };
    },
  };
}

const KERNELS: tf.KernelConfig[] = [
  opsKernel('Conv2DBackpropFilter', ([x, dy], attrs) => conv2dFilterGrad(x, dy, attrs), ['x', 'dy']),
  opsKernel('DepthwiseConv2dNativeBackpropInput', ([dy, filter], attrs) => depthwiseInputGrad(dy, filter, attrs), ['dy', 'filter']),
  opsKernel('DepthwiseConv2dNativeBackpropFilter', ([x, dy], attrs) => depthwiseFilterGrad(x, dy, attrs), ['x', 'dy']),
];

/**
 * Identity by reference, as tfjs-backend-cpu's: the wasm backend's copies the values, which every
 * customGrad `save` pays (it clones what it saves: a dense layer's input, a batch for the first)
 * and opsKernel() above for each input. tfjs never writes a tensor's values in place (nor do our
 * kernels: they write fresh outputs), so a shared buffer reads the same; it is freed with its last
 * reference.
 */
const IDENTITY: tf.KernelConfig = {
  kernelName: 'Identity',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    (backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};

/** Kernels the wasm backend has but gets wrong or makes slow, replaced. */
const REPLACED = [opsKernel('MaxPoolGrad', ([dy, x, y], attrs) => maxPoolGrad(dy, x, y, attrs), ['dy', 'input', 'output']), IDENTITY];

/** Registers the kernels above for wasm; idempotent (the child is reused across jobs). */
export function registerWasmGradientKernels(): void {
  for (const kernel of [...KERNELS, ...REPLACED]) {
    const registered = tf.getKernel(kernel.kernelName, 'wasm');
    if (registered?.kernelFunc === kernel.kernelFunc) continue;
    if (registered !== undefined) tf.unregisterKernel(kernel.kernelName, 'wasm');
    tf.registerKernel(kernel);
  }
}
