/**
 * The training-mode forward pass: logits plus the output of a feature layer (what the
 * domain-adaptation methods align), with frozen layers in inference mode. On wasm, dense, conv
 * and pooling layers run through custom gradients: tfjs's dense gradient calls matMul with
 * transposed operands, which the wasm backend runs about 7x slower than a plain product,
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, so a conv layer could not be trained
 * there at all, and its Conv2DBackpropInput, MaxPoolGrad and AvgPoolGrad kernels are plain loops
 * that XNNPACK's convolutions and elementwise ops beat several times over.
 */
import tf = require('@tensorflow/tfjs');
import { sumsKernelGradByTaps, sumsKernelGradDirectly, windowsApart } from '../../src/jobs/step-kernels.js';
import { TrainingError } from '../../src/jobs/task.js';
import { graphForward } from './functional-forward.js';
import { flatRows, type FeatureLayer, type Forward } from './forward.js';
import { columnSums, convKernelGrad, convKernelGradByTaps, matMul, maxPoolGrad, transpose2d, wasmKernels } from './wasm-kernels.js';

export type { FeatureLayer, Forward, ForwardResult } from './forward.js';
import { spreadGradient } from './gradients/transposed.js';

/** One layer's forward. */
type LayerStep = (h: tf.Tensor) => tf.Tensor;

const ACTIVATIONS: Record<string, (x: tf.Tensor) => tf.Tensor> = {
  linear: (x) => x,
  relu: (x) => tf.relu(x),
  tanh: (x) => tf.tanh(x),
  sigmoid: (x) => tf.sigmoid(x),
  elu: (x) => tf.elu(x),
  selu: (x) => tf.selu(x),
};

const POOLS: Record<string, 'max' | 'avg'> = { MaxPooling2D: 'max', AveragePooling2D: 'avg' };

const product = (shape: readonly (number | null)[]) => shape.reduce<number>((a, b) => a * (b ?? 1), 1);

/** The last layer with weights at or before the one that produces the model's output. */
export function headLayer(model: tf.LayersModel): tf.layers.Layer {
  let layer = model.outputs[0].sourceLayer;
  while (layer.weights.length === 0) {
    const from = layer.inboundNodes[0]?.inboundLayers;
    if (from?.length !== 1) break;
    layer = from[0]!;
  }
  return layer;
}

/**
 * The layer `name`, or by default the one feeding the head (the model's input when the head
 * is the first layer). `param` is the spec field that named it.
 */
export function featureLayerOf(model: tf.LayersModel, name: string | undefined, param: string): FeatureLayer {
  let layer: tf.layers.Layer | undefined;
  if (name !== undefined) {
    layer = model.layers.find((l) => l.name === name);
    if (layer === undefined) {
      throw new TrainingError(
        'invalid_spec',
        `model ${model.name} has no layer named '${name}'; its layers are ${model.layers.map((l) => l.name).join(', ')}`,
        { param },
      );
    }
    if (layer.inboundNodes.length > 1) {
      throw new TrainingError('invalid_spec', `layer '${name}' is used more than once in model ${model.name}, so its output is ambiguous; name another layer`, {
        param,
      });
    }
  } else {
    const before = headLayer(model).inboundNodes[0]?.inboundLayers[0];
    layer = before === undefined || before.getClassName() === 'InputLayer' ? undefined : before;
  }
  const shape = layer === undefined ? model.inputs[0].shape.slice(1) : (layer.outputShape as (number | null)[]).slice(1);
  return { layer, name: layer?.name ?? model.inputs[0].name, size: product(shape) };
}

export interface ForwardOptions {
  /**
   * Start after this layer: the forward then takes its outputs (a feature cache) instead of
   * the model's input. Every trained layer must come after it; `features` are its output when
   * the feature layer is at or before it.
   */
  cut?: tf.layers.Layer;
}

/**
 * The forward pass of `model` when `trainable` are the variables being trained. A layer with
 * weights none of which is trained runs in inference mode (so a frozen batch-norm layer keeps
 * its statistics, as in Keras); every other layer in training mode. A Sequential model runs
 * layer by layer (with the fast gradients on wasm when `fastGradients`), from `opts.cut` on when
 * the feature cache feeds that layer's outputs; any other model node by node through its graph,
 * from the cut when given (functional-forward.ts).
 */
export function trainingForward(
  model: tf.LayersModel,
  trainable: readonly tf.Variable[],
  feature: FeatureLayer,
  fastGradients: boolean,
  opts: ForwardOptions = {},
): Forward {
  const trained = new Set(trainable.map((v) => v.name));
  const trains = (layer: tf.layers.Layer) => layer.trainableWeights.some((w) => trained.has(w.name));
  const training = (layer: tf.layers.Layer) => layer.weights.length === 0 || trains(layer);
  if (!(model instanceof tf.Sequential)) {
    inferenceWhenFrozen(model, trains);
    return graphForward(model, { trains, feature, ...(opts.cut ? { cut: opts.cut } : {}) });
  }
  const all = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const layers = opts.cut === undefined ? all : all.slice(all.indexOf(opts.cut) + 1);
  let trainedBefore = false;
  const steps = layers.map((layer) => {
    const step = layerStep(layer, training(layer), trainedBefore, fastGradients);
    trainedBefore ||= trains(layer);
    return step;
  });
  const featureIndex = feature.layer === undefined ? -1 : layers.indexOf(feature.layer);
  return (x: tf.Tensor) => {
    let h = x;
    let features = x;
    steps.forEach((step, i) => {
      h = step(h);
      if (i === featureIndex) features = h;
    });
    return { logits: h as tf.Tensor2D, features: flatRows(features) };
  };
}

/**
 * Makes every layer of a functional `model` (nested models included) that has weights and none of
 * them trained run in inference mode, whatever the call asks. The graph walk gives each layer its
 * own mode, but a nested model is one step of it: tfjs passes its one `training` flag to all the
 * nested layers, and a frozen batch-norm layer in training mode would normalise by the batch's
 * statistics and overwrite its moving averages.
 * The model is the job's own, loaded for it, so its layers' `call` can be wrapped in place.
 */
function inferenceWhenFrozen(model: tf.LayersModel, trains: (layer: tf.layers.Layer) => boolean): void {
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) inferenceWhenFrozen(layer, trains);
    else if (layer.weights.length > 0 && !trains(layer)) {
      const call = layer.call.bind(layer);
      layer.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
    }
  }
}

/** One layer's forward: through dense(), conv2d() or pool2d() below when `fast` and the layer allows, else its own call. */
function layerStep(layer: tf.layers.Layer, training: boolean, inputGrad: boolean, fast: boolean): LayerStep {
  const own = (h: tf.Tensor) => layer.apply(h, { training }) as tf.Tensor;
  if (!fast) return own;
  const config = layer.getConfig();
  if (layer.getClassName() === 'BatchNormalization' && training && layer.weights.length === 4 && (config.axis === -1 || config.axis === undefined)) {
    const [gamma, beta, movingMean, movingVariance] = layer.weights as [tf.LayerVariable, tf.LayerVariable, tf.LayerVariable, tf.LayerVariable];
    return (h) => batchNorm(h, gamma, beta, movingMean, movingVariance, Number(config.momentum), Number(config.epsilon));
  }
  const pool = POOLS[layer.getClassName()];
  if (pool !== undefined && config.dataFormat === 'channelsLast') {
    const size = pair(config.poolSize);
    if (windowsApart(size, pair(config.strides ?? config.poolSize), config.padding !== 'valid')) return (h) => pool2d(h as tf.Tensor4D, size, pool);
  }
  const activation = typeof config.activation === 'string' ? ACTIVATIONS[config.activation] : undefined;
  const [kernel, bias] = layer.weights.map((w) => w.read() as tf.Variable);
  if (activation === undefined || kernel === undefined) return own;
  const className = layer.getClassName();
  if (className === 'Dense' && bias !== undefined) {
    return (h: tf.Tensor) => (h.rank === 2 ? activation(dense(h as tf.Tensor2D, kernel, bias, inputGrad)) : own(h));
  }
  const strides = pair(config.strides);
  const padding = config.padding;
  const dilation = pair(config.dilationRate);
  if (className === 'Conv2D' && config.dataFormat === 'channelsLast' && dilation[0] === 1 && dilation[1] === 1 && (padding === 'same' || padding === 'valid')) {
    const relu = config.activation === 'relu';
    return (h) =>
      relu
        ? conv2d(h as tf.Tensor4D, kernel, bias, strides, padding, inputGrad, true)
        : activation(conv2d(h as tf.Tensor4D, kernel, bias, strides, padding, inputGrad));
  }
  return own;
}

function pair(value: unknown): [number, number] {
  if (Array.isArray(value)) return [Number(value[0]), Number(value[1] ?? value[0])];
  return [Number(value ?? 1), Number(value ?? 1)];
}

/**
 * Training-mode batch normalisation over the last axis, as tfjs's layer computes it (batch
 * statistics, the biased variance, moving averages decayed by `momentum`), from broadcasting
 * ops: their gradients reduce with a sum, where the gradient of tfjs's batchNorm op tiles its
 * statistics to the full input shape, which on wasm costs more than the rest of a CNN's step.
 */
function batchNorm(
  x: tf.Tensor,
  gamma: tf.LayerVariable,
  beta: tf.LayerVariable,
  movingMean: tf.LayerVariable,
  movingVariance: tf.LayerVariable,
  momentum: number,
  epsilon: number,
): tf.Tensor {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  for (const [moving, value] of [
    [movingMean, mean],
    [movingVariance, variance],
  ] as const) {
    tf.tidy(() => void moving.write(tf.sub(moving.read(), tf.mul(tf.sub(moving.read(), value), 1 - momentum))));
  }
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma.read()), beta.read());
}

/**
 * 2-D pooling over windows that do not overlap (strides equal to the pool size, "valid"
 * padding). tfjs-backend-wasm's MaxPoolGrad and AvgPoolGrad kernels are plain loops (about 3x and
 * 10x slower on a CNN's first pooling layer), and its MaxPoolGrad sends the gradient of a window
 * without a positive value nowhere and that of tied maxima to the last. On wasm, max pooling's
 * gradient is our kernel (wasm-kernels.ts), which sends it to the first maximum, as the cpu
 * backend and TensorFlow do; elsewhere it is tfjs's own. Average pooling's is elementwise: each
 * window's dy over its size.
 */
export function pool2d(x: tf.Tensor4D, size: [number, number], kind: 'max' | 'avg'): tf.Tensor4D {
  if (kind === 'max') {
    const wasm = wasmKernels();
    if (wasm === undefined || x.dtype !== 'float32') return tf.maxPool(x, size, size, 'valid');
    return tf.customGrad((input, save) => {
      (save as tf.GradSaveFunc)([input as tf.Tensor]);
      return {
        value: tf.maxPool(input as tf.Tensor4D, size, size, 'valid'),
        gradFunc: (dy: tf.Tensor4D, [saved]: tf.Tensor[]) => maxPoolGrad(wasm, saved as tf.Tensor4D, dy, size),
      };
    })(x);
  }
  return tf.customGrad((input) => ({
    value: tf.avgPool(input as tf.Tensor4D, size, size, 'valid'),
    gradFunc: (dy: tf.Tensor4D) => avgPoolGrad(dy, x.shape, size),
  }))(x);
}

/** pool2d()'s input gradient for average pooling: dy / (ph·pw) at every position its window covers, 0 where none does. */
function avgPoolGrad(dy: tf.Tensor4D, inputShape: [number, number, number, number], size: [number, number]): tf.Tensor4D {
  const [batch, height, width, channels] = inputShape;
  const [, outH, outW] = dy.shape;
  const [ph, pw] = size;
  // The rows and columns the windows cover; [b, oh, ph, ow, pw, c] lays them out window by window.
  const covered: [number, number, number, number] = [batch, outH * ph, outW * pw, channels];
  const spread = tf.mul(tf.reshape(dy, [batch, outH, 1, outW, 1, channels]), tf.fill([1, 1, ph, 1, pw, 1], 1 / (ph * pw)));
  const grad = tf.reshape(spread, covered) as tf.Tensor4D;
  return covered[1] === height && covered[2] === width
    ? grad
    : tf.pad(grad, [
        [0, 0],
        [0, height - covered[1]],
        [0, width - covered[2]],
        [0, 0],
      ]);
}

/**
 * x·W + b. On wasm, each product is one kernel of ours (wasm-kernels.ts matMul), which reads its
 * operands as they lie: the forward x·W with the bias added, dW = xᵀ·dy reading x transposed, and
 * dx = dy·Wᵀ from W transposed by our kernel. tfjs-backend-wasm runs a product with a transposed
 * operand about 7x slower than a plain one, and XNNPACK packs its right operand anew whenever its
 * values are new, as weights and batches are at every step, at about 10 ns an element: as long as
 * the product itself for a batch of 64 rows. The bias gradient's column sums are ours too. The
 * gradient reads the kernel itself, not a saved copy: the step updates it only after the
 * gradients are computed. `inputGrad` false skips dx, for a layer with nothing trained before it.
 * Elsewhere, tfjs's own ops and gradients.
 */
export function dense(x: tf.Tensor2D, kernel: tf.Tensor2D | tf.Variable, bias: tf.Tensor1D | tf.Variable, inputGrad: boolean): tf.Tensor2D {
  const w = kernel as tf.Tensor2D;
  const b = bias as tf.Tensor1D;
  const wasm = wasmKernels();
  if (wasm === undefined || [x, w, b].some((t) => t.dtype !== 'float32')) return tf.add(tf.matMul(x, w), b);
  const forward = (save: tf.GradSaveFunc): tf.Tensor2D => {
    save([x]);
    return matMul(wasm, x, w, { transposeA: false, bias: b });
  };
  const paramGrads = (dy: tf.Tensor2D, saved: tf.Tensor2D) => [matMul(wasm, saved, dy, { transposeA: true }), columnSums(dy)];
  if (inputGrad) {
    return tf.customGrad((_x, _w, _b, save) => ({
      value: forward(save as tf.GradSaveFunc),
      gradFunc: (dy: tf.Tensor2D, [saved]) => [matMul(wasm, dy, transpose2d(w), { transposeA: false }), ...paramGrads(dy, saved as tf.Tensor2D)],
    }))(x, w, b);
  }
  return tf.customGrad((_w, _b, save) => ({
    value: forward(save as tf.GradSaveFunc),
    gradFunc: (dy: tf.Tensor2D, [saved]) => paramGrads(dy, saved as tf.Tensor2D),
  }))(w, b);
}

/**
 * A 2-D convolution (NHWC, dilation 1) plus bias in one fused kernel, then a relu when `relu`,
 * whose kernel gradient is itself a convolution, so it needs no Conv2DBackpropFilter kernel:
 * dW[p, q, i, o] = sum over b, y, x of xpad[b, s·y + p, s·x + q, i] · dy[b, y, x, o], which is
 * the convolution of xpad with the channels and batch swapped (i as the batch, b as the input
 * channels) by dy used as the filter, dilated by the stride. The bias gradient, the sum of dy
 * over all but its channels, is taken as average pooling over each whole image times its size:
 * tfjs's sum over leading axes transposes dy first, several times slower. As in dense(), the
 * gradient reads the kernel itself.
 */
export function conv2d(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D | tf.Variable,
  bias: tf.Tensor1D | tf.Variable | undefined,
  strides: [number, number],
  padding: 'same' | 'valid',
  inputGrad: boolean,
  relu = false,
): tf.Tensor4D {
  const w = kernel as tf.Tensor4D;
  const b = bias as tf.Tensor1D | undefined;
  const convolve = (save: tf.GradSaveFunc) => {
    // tfjs fuses no activation while a gradient is being recorded, as here, even inside customGrad.
    const z = tf.fused.conv2d({ x, filter: w, strides, pad: padding, ...(b ? { bias: b } : {}) });
    const y = relu ? tf.relu(z) : z;
    // The relu's gradient needs where its output is positive, which is where its input is.
    save(relu ? [x, y] : [x]);
    return y;
  };
  const grads = (dy: tf.Tensor4D, [sx, sy]: tf.Tensor[]): tf.Tensor[] => {
    const g = relu ? (tf.mul(dy, tf.step(sy)) as tf.Tensor4D) : dy;
    const [, outH, outW] = g.shape;
    return [
      ...(inputGrad ? [conv2dInputGrad(g, w, sx.shape, strides, padding)] : []),
      conv2dKernelGrad(sx as tf.Tensor4D, g, w.shape, strides, padding),
      ...(b === undefined ? [] : [tf.mul(tf.sum(tf.avgPool(g, [outH, outW], [outH, outW], 'valid'), [0, 1, 2]), outH * outW)]),
    ];
  };
  const inputs = [...(inputGrad ? [x] : []), w, ...(b === undefined ? [] : [b])];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: convolve(args[args.length - 1] as tf.GradSaveFunc),
    gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => grads(dy, saved),
  }));
  return op(...inputs);
}

/**
 * The input gradient of conv2d(x, W, strides, padding) for x of `inputShape`, as a forward
 * convolution (see spreadGradient()) with W flipped in space and its channels swapped.
 * tfjs-backend-wasm's own Conv2DBackpropInput kernel is a plain loop that takes about 10x longer
 * than this convolution, which XNNPACK runs.
 */
export function conv2dInputGrad(dy: tf.Tensor4D, kernel: tf.Tensor4D, inputShape: number[], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  const [kh, kw] = kernel.shape;
  const [, inH, inW] = inputShape as [number, number, number, number];
  const { spread, pads } = spreadGradient(dy, {
    kh,
    kw,
    inH,
    inW,
    strides,
    padTop: padBefore(inH, kh, strides[0], padding),
    padLeft: padBefore(inW, kw, strides[1], padding),
  });
  const flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  return tf.conv2d(spread, flipped, 1, pads);
}

function padBefore(size: number, kernel: number, stride: number, padding: 'same' | 'valid'): number {
  return padding === 'same' ? samePadding(size, kernel, stride)[0] : 0;
}

/**
 * The kernel gradient of conv2d(x, W, strides, padding), as described at conv2d(); or, when a
 * patch of x (kh·kw·inChannels values) is smaller than a pixel of dy (outChannels values), as
 * the product dyᵀ·patches over all output pixels, the patches cut by a convolution with a one-hot
 * kernel: either way XNNPACK packs one operand as large as that count times the pixels (dy as
 * the filter, or the patches), at about 10 ns an element, most of the time this takes for a
 * first layer. So for such a layer on wasm, with outChannels a multiple of 16, our kernel sums
 * the products itself, packing nothing (wasm-kernels.ts): 0.8 ms instead of 5.1 for the small
 * CNN's 28x28 first layer, with the same bits (XNNPACK's product also adds along the pixels in order).
 * Any other layer with strides 1 on wasm takes one product of our matMul per tap over padded grids
 * (wasm-kernels.ts convKernelGradByTaps): half the time of the convolution of x by dy on the small
 * CNN's second layer.
 */
export function conv2dKernelGrad(x: tf.Tensor4D, dy: tf.Tensor4D, kernelShape: number[], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  const [kh, kw, inChannels, outChannels] = kernelShape as [number, number, number, number];
  const patchSize = kh * kw * inChannels;
  const wasm = wasmKernels();
  if (sumsKernelGradDirectly(patchSize, outChannels) && wasm !== undefined && x.dtype === 'float32' && dy.dtype === 'float32') {
    const geometry = { strides, padTop: padBefore(x.shape[1], kh, strides[0], padding), padLeft: padBefore(x.shape[2], kw, strides[1], padding) };
    return convKernelGrad(wasm, x, dy, [kh, kw, inChannels, outChannels], geometry);
  }
  if (sumsKernelGradByTaps(strides) && wasm !== undefined && x.dtype === 'float32' && dy.dtype === 'float32') {
    const pads = { top: padBefore(x.shape[1], kh, 1, padding), left: padBefore(x.shape[2], kw, 1, padding) };
    return convKernelGradByTaps(wasm, x, dy, [kh, kw, inChannels, outChannels], pads);
  }
  if (patchSize < outChannels) {
    const [batch, outH, outW] = dy.shape;
    const pixels = batch * outH * outW;
    const patches = tf.reshape(tf.conv2d(x, patchKernel(kh, kw, inChannels), strides, padding), [pixels, patchSize]);
    // Transposed by images: the wasm backend transposes a tall [pixels, channels] matrix several times slower.
    const dyT = tf.reshape(tf.transpose(tf.reshape(dy, [batch, outH * outW, outChannels]), [2, 0, 1]), [outChannels, pixels]);
    const dwT = tf.matMul(dyT, patches);
    return tf.transpose(tf.reshape(dwT, [outChannels, kh, kw, inChannels]), [1, 2, 3, 0]);
  }
  // Padded by the convolution itself: tfjs-backend-wasm's PadV2 is a slow loop.
  const none: [number, number] = [0, 0];
  const rows = padding === 'same' ? samePadding(x.shape[1], kh, strides[0]) : none;
  const columns = padding === 'same' ? samePadding(x.shape[2], kw, strides[1]) : none;
  const swapped = tf.transpose(x, [3, 1, 2, 0]);
  const filter = tf.transpose(dy, [1, 2, 0, 3]);
  const full = tf.conv2d(swapped, filter, 1, [none, rows, columns, none], 'NHWC', strides);
  return tf.transpose(tf.slice(full, [0, 0, 0, 0], [inChannels, kh, kw, outChannels]), [1, 2, 0, 3]);
}

/** The kernel whose convolution copies each patch of the input into the channels of one pixel, in W's (row, column, channel) order. */
function patchKernel(kh: number, kw: number, channels: number): tf.Tensor4D {
  const size = kh * kw * channels;
  const values = new Float32Array(size * size);
  for (let k = 0; k < size; k++) values[k * size + k] = 1;
  return tf.tensor4d(values, [kh, kw, channels, size]);
}

/** TensorFlow's "same" padding of one axis: the output has ceil(size / stride) positions. */
function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}
