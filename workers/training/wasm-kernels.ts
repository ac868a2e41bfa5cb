/**
 * The step's hand-written WASM SIMD kernels (wasm-kernels.wat), instantiated on
 * tfjs-backend-wasm's own memory so that they read and write tensors where they lie: the fused
 * optimizer update (fused-update.ts); a dense layer's products, transposes and the column sums of
 * its bias gradient; max pooling's gradient and a first convolution's kernel gradient
 * (network.ts). tfjs-backend-wasm has no way to add a kernel to its own module, and its kernels
 * for these take several passes (four kernels for a momentum update; Sum over axis 0 transposes
 * first), one value at a time (Transpose: 3-5x slower than 4x4 tiles of SIMD shuffles on a
 * 784x128 kernel; MaxPoolGrad a plain loop, which also sends a tie's gradient to the wrong
 * maximum) or pack an operand anew at every step (XNNPACK's products), each with tfjs's
 * per-kernel overhead. Every kernel here gives tfjs's float32 results bit for bit
 * (test/workers/training/fused-update.test.ts), but for matMul with FUSED_PRODUCTS.
 */
import tf = require('@tensorflow/tfjs');
import { WASM_KERNELS } from './wasm-kernels-binary.js';

/** The functions of wasm-kernels.wat: tensors by their values' byte offset in the heap. */
export interface WasmKernels {
  /** the updates: n values of each of `rows` rows, `ld` values apart (1 and n: a whole tensor) */
  sgd: (w0: number, g: number, w: number, n: number, c: number, rows: number, ld: number) => void;
  momentum: (w0: number, v0: number, g: number, w: number, v: number, n: number, m: number, c: number, rows: number, ld: number) => void;
  nesterov: (w0: number, v0: number, g: number, w: number, v: number, n: number, m: number, c: number, rows: number, ld: number) => void;
  columnSums: (x: number, out: number, rows: number, cols: number) => void;
  transpose: (x: number, out: number, rows: number, cols: number) => void;
  maxPoolGrad: (x: number, dy: number, dx: number, batch: number, height: number, width: number, channels: number, ph: number, pw: number) => void;
  /** `ld`: values from a row of b and of c to the next (n for whole matrices) */
  matMul: (
    a: number,
    b: number,
    bias: number,
    c: number,
    m: number,
    k: number,
    n: number,
    rowStride: number,
    colStride: number,
    accumulate: number,
    ld: number,
  ) => void;
  byteTable: (bytes: number, table: number, out: number, n: number) => void;
  embed: (
    x: number,
    out: number,
    batch: number,
    height: number,
    width: number,
    channels: number,
    outH: number,
    outW: number,
    top: number,
    left: number,
    outBytes: number,
  ) => void;
  convKernelGrad: (
    x: number,
    dy: number,
    dw: number,
    batch: number,
    height: number,
    width: number,
    channels: number,
    outH: number,
    outW: number,
    outChannels: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    padTop: number,
    padLeft: number,
  ) => void;
}

/** What these kernels use of tfjs-backend-wasm's BackendWasm. */
export interface WasmBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number): tf.TensorInfo;
  getMemoryOffset(dataId: tf.DataId): number;
  /**
   * the emscripten module: the threaded build keeps its (shared) memory as wasmMemory, the others
   * export it; BackendWasm allocates with _malloc and frees a tensor's memory with _free
   */
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory }; _malloc: (bytes: number) => number; _free: (offset: number) => void };
}

/** The kernels instantiated on each wasm memory (one per process in practice). */
const instances = new WeakMap<WebAssembly.Memory, WasmKernels>();

/**
 * Whether matMul fuses its multiply-adds: where the engine validates relaxed SIMD (Node 22; Node
 * 20 not without a flag). f32x4.relaxed_madd is one fused multiply-add where the CPU has FMA, as
 * OpenBLAS and TensorFlow compute, with one rounding per term instead of two: closer to the exact
 * product (tested), no longer XNNPACK's bits, the same bits on the same machine from run to run.
 * It takes x64 six instructions fewer per 32 terms, and the seed MLP's step some 15% less time.
 */
export const FUSED_PRODUCTS = WebAssembly.validate(Buffer.from(WASM_KERNELS.plainFused, 'base64'));

/** Each build of the module, compiled once a process: every Batcher instantiates one on its own memory (byte-lookup.ts). */
const modules = new Map<keyof typeof WASM_KERNELS, WebAssembly.Module>();

/** The compiled module of wasm-kernels.wat for `memory` (shared or not), with matMul's multiply-adds fused or not. */
export function kernelsModule(memory: WebAssembly.Memory, opts: { fused: boolean }): WebAssembly.Module {
  const plain = memory.buffer instanceof SharedArrayBuffer ? 'shared' : 'plain';
  const kind = opts.fused ? (`${plain}Fused` as const) : plain;
  let module = modules.get(kind);
  if (module === undefined) {
    module = new WebAssembly.Module(Buffer.from(WASM_KERNELS[kind], 'base64'));
    modules.set(kind, module);
  }
  return module;
}

/** The kernels of wasm-kernels.wat on `memory`, with matMul's multiply-adds fused or not. */
export function kernelsOn(memory: WebAssembly.Memory, opts: { fused: boolean }): WasmKernels {
  // a plain copy of the (frozen) exports, so that bench/step-parts.ts can time each kernel
  return { ...new WebAssembly.Instance(kernelsModule(memory, opts), { env: { memory } }).exports } as unknown as WasmKernels;
}

/** tfjs-backend-wasm's memory. */
export function memoryOf(backend: WasmBackend): WebAssembly.Memory {
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error("tfjs-backend-wasm's module shows no WebAssembly.Memory: workers/training/wasm-kernels.ts does not fit this tfjs version");
  }
  return memory;
}

/** The wasm backend and the kernels on its memory, when wasm is the active backend. */
export function wasmKernels(): { backend: WasmBackend; kernels: WasmKernels } | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const backend = tf.backend() as WasmBackend;
  const memory = memoryOf(backend);
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    kernels = kernelsOn(memory, { fused: FUSED_PRODUCTS });
    instances.set(memory, kernels);
  }
  return { backend, kernels };
}

/** Byte alignment of freshTensor's values: a cache line. */
const LINE = 64;
/** The block _malloc gave for each of freshTensor's aligned offsets, which _free must get back. */
const blocks = new Map<number, number>();
const freeing = new WeakSet<object>();

/**
 * A new float32 tensor of `shape` on the wasm backend, its values unset, and their byte offset in
 * the heap, a multiple of 64: tfjs's allocator (malloc) gives 8 or 16. When a product or an update
 * is shared by columns between threads (product-helpers.ts), a row of its output then never
 * straddles a cache line that both write: the seed MLP's step on 2 threads took 0.52 ms with the
 * weights and their gradients on tfjs's offsets, 0.47 aligned (medians of 6 runs each). Its
 * memory is allocated here and registered with BackendWasm at the aligned offset; BackendWasm's
 * `_free` is wrapped, once, to free the block that offset lies in.
 */
export function freshTensor(backend: WasmBackend, shape: number[]): { tensor: tf.Tensor; offset: number } {
  const module = backend.wasm;
  if (!freeing.has(module)) {
    const free = module._free;
    module._free = (offset) => {
      const block = blocks.get(offset);
      if (block !== undefined) blocks.delete(offset);
      free(block ?? offset);
    };
    freeing.add(module);
  }
  const block = module._malloc(tf.util.sizeFromShape(shape) * 4 + LINE);
  // a trap, as emscripten's own failed allocation is, so that the worker host reports it as the memory cap's kind of failure
  if (block === 0)
    throw new WebAssembly.RuntimeError(`out of memory: the wasm heap cannot hold a tensor of shape [${shape.join(', ')}] more (malloc returned 0)`);
  const offset = Math.ceil(block / LINE) * LINE;
  blocks.set(offset, block);
  const info = backend.makeOutput(shape, 'float32', offset);
  return { tensor: tf.engine().makeTensorFromTensorInfo(info, backend), offset };
}

/** tf.sum(x, 0) of a float32 matrix, with the same bits; one kernel of ours on wasm. */
export function columnSums(x: tf.Tensor2D): tf.Tensor1D {
  const wasm = wasmKernels();
  if (wasm === undefined || x.dtype !== 'float32') return tf.sum(x, 0);
  const [rows, cols] = x.shape;
  const out = freshTensor(wasm.backend, [cols]);
  wasm.kernels.columnSums(wasm.backend.getMemoryOffset(x.dataId), out.offset, rows, cols);
  return out.tensor as tf.Tensor1D;
}

/** tf.transpose(x) of a float32 matrix (a copy: the same bits); one kernel of ours on wasm. */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  const wasm = wasmKernels();
  if (wasm === undefined || x.dtype !== 'float32') return tf.transpose(x);
  const [rows, cols] = x.shape;
  const out = freshTensor(wasm.backend, [cols, rows]);
  wasm.kernels.transpose(wasm.backend.getMemoryOffset(x.dataId), out.offset, rows, cols);
  return out.tensor as tf.Tensor2D;
}

/**
 * tf.matMul(a, b, transposeA) of float32 matrices, then tf.add of `bias` (a row of b's columns)
 * when given, in one kernel of ours, which reads b as laid out (XNNPACK packs it anew whenever its
 * values are new, as a step's weights and batches are: as long as the product itself for a batch
 * of 64 rows) and a either way round. The same bits, or with FUSED_PRODUCTS each term's product
 * and sum rounded once. `opts.transposeA`: a is [k, m].
 */
export function matMul(
  wasm: { backend: WasmBackend; kernels: WasmKernels },
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  opts: { transposeA: boolean; bias?: tf.Tensor1D },
): tf.Tensor2D {
  const { backend, kernels } = wasm;
  const [m, k] = opts.transposeA ? [a.shape[1], a.shape[0]] : a.shape;
  const n = b.shape[1];
  if (b.shape[0] !== k) throw new Error(`matMul: a gives ${k} terms per output, b has ${b.shape[0]} rows`);
  // the kernel sums at least one term
  if (k === 0 || m === 0 || n === 0) {
    const product: tf.Tensor2D = tf.matMul(a, b, opts.transposeA);
    return opts.bias === undefined ? product : tf.add(product, opts.bias);
  }
  const c = freshTensor(backend, [m, n]);
  const [rowStride, colStride] = opts.transposeA ? [1, m] : [k, 1];
  const bias = opts.bias === undefined ? 0 : backend.getMemoryOffset(opts.bias.dataId);
  kernels.matMul(backend.getMemoryOffset(a.dataId), backend.getMemoryOffset(b.dataId), bias, c.offset, m, k, n, rowStride, colStride, 0, n);
  return c.tensor as tf.Tensor2D;
}

/**
 * The input gradient of tf.maxPool(x, size, size, 'valid'): each window's dy at its first
 * maximum, as tfjs-backend-cpu and TensorFlow send it (tfjs-backend-wasm's MaxPoolGrad sends a
 * tie's to the last, and that of a window without a positive value nowhere); one kernel of ours,
 * where tfjs ops on the windows took fourteen kernels and 5.5 ms of a 35 ms small-CNN step.
 */
export function maxPoolGrad(wasm: { backend: WasmBackend; kernels: WasmKernels }, x: tf.Tensor4D, dy: tf.Tensor4D, size: [number, number]): tf.Tensor4D {
  const { backend, kernels } = wasm;
  const [batch, height, width, channels] = x.shape;
  const dx = freshTensor(backend, x.shape);
  kernels.maxPoolGrad(backend.getMemoryOffset(x.dataId), backend.getMemoryOffset(dy.dataId), dx.offset, batch, height, width, channels, size[0], size[1]);
  return dx.tensor as tf.Tensor4D;
}

/**
 * The kernel gradient of a convolution (NHWC, dilation 1) whose patch is smaller than a pixel of
 * dy, outChannels a multiple of 16: a pass over dy per tap and 16 channels, in our kernel. tfjs
 * ops cut the patches and multiply them: 4.5 ms of a small CNN's 35 ms step for its first layer.
 */
export function convKernelGrad(
  wasm: { backend: WasmBackend; kernels: WasmKernels },
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kernelShape: [number, number, number, number],
  geometry: { strides: [number, number]; padTop: number; padLeft: number },
): tf.Tensor4D {
  const { backend, kernels } = wasm;
  const [batch, height, width, channels] = x.shape;
  const [, outH, outW, outChannels] = dy.shape;
  const dw = freshTensor(backend, kernelShape);
  const { strides, padTop, padLeft } = geometry;
  kernels.convKernelGrad(
    backend.getMemoryOffset(x.dataId),
    backend.getMemoryOffset(dy.dataId),
    dw.offset,
    batch,
    height,
    width,
    channels,
    outH,
    outW,
    outChannels,
    kernelShape[0],
    kernelShape[1],
    strides[0],
    strides[1],
    padTop,
    padLeft,
  );
  return dw.tensor as tf.Tensor4D;
}

/** Pixels per chunk of convKernelGradByTaps: 256 pixels of 16 input and 32 output channels are 48 KiB of the two grids. */
const TAP_CHUNK = 256;

/**
 * The kernel gradient of a convolution with strides 1 (NHWC, dilation 1) as one product of our
 * matMul per tap, cutting no patches: x zero-padded as the forward pads it, [batch, Hp, Wp, C]
 * with room after the last image for the last tap's shift, and dy laid on the same grid (zeros
 * past its outH × outW), so that tap (p, q) reads x shifted by p·Wp + q pixels: dW[p, q] =
 * xᵀ(shifted)·dy over every pixel of the grid, those outside dy adding zeros. In chunks of
 * TAP_CHUNK pixels, every tap's product over a chunk before the next (each output summing along
 * the pixels in order all the same), so that the chunk of both grids stays in cache across the
 * taps: in one go, each tap streamed both grids from memory for every block of outputs. tfjs's
 * way, a convolution of x with dy as the filter, ran at 11 GFLOP/s on a small CNN's second layer,
 * a quarter of its step.
 */
export function convKernelGradByTaps(
  wasm: { backend: WasmBackend; kernels: WasmKernels },
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kernelShape: [number, number, number, number],
  padding: { top: number; left: number },
): tf.Tensor4D {
  const { backend, kernels } = wasm;
  const [batch, height, width, channels] = x.shape;
  const [, outH, outW, outChannels] = dy.shape;
  const [kh, kw] = kernelShape;
  // the grid a stride-1 convolution reads: its input padded
  const [gridH, gridW] = [outH + kh - 1, outW + kw - 1];
  const pixels = batch * gridH * gridW;
  const slack = (kh - 1) * gridW + kw - 1;
  const xGrid = freshTensor(backend, [pixels + slack, channels]);
  const dyGrid = freshTensor(backend, [pixels, outChannels]);
  const dw = freshTensor(backend, kernelShape);
  try {
    kernels.embed(
      backend.getMemoryOffset(x.dataId),
      xGrid.offset,
      batch,
      height,
      width,
      channels,
      gridH,
      gridW,
      padding.top,
      padding.left,
      (pixels + slack) * channels * 4,
    );
    kernels.embed(backend.getMemoryOffset(dy.dataId), dyGrid.offset, batch, outH, outW, outChannels, gridH, gridW, 0, 0, pixels * outChannels * 4);
    for (let from = 0; from < pixels; from += TAP_CHUNK) {
      const chunk = Math.min(TAP_CHUNK, pixels - from);
      for (let p = 0; p < kh; p++) {
        for (let q = 0; q < kw; q++) {
          const shift = (from + p * gridW + q) * channels * 4;
          const tap = (p * kw + q) * channels * outChannels * 4;
          // dW[p, q] [channels, outChannels] += the chunk's shifted grid of x, read transposed, · dy's grid
          kernels.matMul(
            xGrid.offset + shift,
            dyGrid.offset + from * outChannels * 4,
            0,
            dw.offset + tap,
            channels,
            chunk,
            outChannels,
            1,
            channels,
            from > 0 ? 1 : 0,
            outChannels,
          );
        }
      }
    }
  } finally {
    tf.dispose([xGrid.tensor, dyGrid.tensor]);
  }
  return dw.tensor as tf.Tensor4D;
}
