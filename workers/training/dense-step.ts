/**
 * The step of a network of dense layers alone (linear or relu, with biases: the seed example's
 * MLP, the service's `mlp` on flat examples), trained whole with no method terms, on wasm. It runs
 * the general step's own kernels in the general step's order (network.ts dense(): our matMul with
 * the bias, xᵀ·dy read transposed, dy·Wᵀ, the column sums; loss.ts on the host), on buffers it
 * keeps in the heap, instead of through tfjs's ops: no tensor, tape entry or tidy per operation.
 * Those took a quarter of the seed MLP's step (tfjs's JavaScript around some 20 kernels, and
 * the garbage its objects leave); the products themselves gain too, their operands 64-byte
 * aligned where tfjs's allocator gives 8. Its gradients go to the job's optimizer as tensors, as
 * the general step's do, so every optimizer and its slots stay as they are. The same bits as the
 * general step (test/workers/training/dense-step.test.ts). In the threaded build (TRAINING_THREADS
 * ≥ 2) its large products, and the update of its kernels, are shared with helper threads of ours
 * (product-helpers.ts), to the same bits (threads.test.ts).
 */
import tf = require('@tensorflow/tfjs');
import type { Batch } from './data.js';
import { crossEntropyOnHost } from './loss.js';
import type { Method } from './methods/method.js';
import { trainingThreads } from './backend.js';
import { sharedKernels } from './product-helpers.js';
import { FUSED_PRODUCTS, freshTensor, kernelsModule, memoryOf, wasmKernels, type WasmBackend, type WasmKernels } from './wasm-kernels.js';

/** One dense layer as the step sees it. */
interface Layer {
  kernel: tf.Variable;
  bias: tf.Variable;
  inputs: number;
  units: number;
  relu: boolean;
  /** heap offsets: this layer's output (rows × units), the gradient at its output */
  out: number;
  dy: number;
  /** where its kernel is transposed for its input gradient: none for the first layer, whose input gradient goes nowhere */
  kernelT: number | undefined;
}

/** A layer before the step places its buffers. */
type LayerPlan = Omit<Layer, 'out' | 'dy' | 'kernelT'>;

export interface DenseStep {
  /** Trains on `batch` (flat examples) and adds its loss and correct count to `sums` (the epoch's, train-step.ts). */
  run(batch: Batch, sums: { loss: number; correct: number }, optimizer: tf.Optimizer): void;
  dispose(): void;
}

/** Byte alignment of the step's buffers: a cache line, so that no vector of an operand straddles two. */
const ALIGN = 64;

/**
 * The dense step for `model` trained by `method`, for batches of at most `batchSize` rows; undefined
 * when the general step must run: not wasm, a layer other than Dense, an activation other than
 * linear or relu, a layer without bias, a weight not trained, or a method with terms.
 */
export function denseStep(model: tf.LayersModel, method: Method, data: { featureShape: number[]; batchSize: number }): DenseStep | undefined {
  const wasm = wasmKernels();
  if (wasm === undefined || method.terms !== undefined || !(model instanceof tf.Sequential) || data.featureShape.length !== 1) return undefined;
  const trained = new Set(method.variables.map((v) => v.name));
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const plan: LayerPlan[] = [];
  for (const layer of layers) {
    const activation = layer.getConfig().activation;
    const [kernel, bias] = layer.weights.map((w) => w.read() as tf.Variable);
    if (layer.getClassName() !== 'Dense' || (activation !== 'linear' && activation !== 'relu') || layer.weights.length !== 2) return undefined;
    if (![kernel, bias].every((v) => trained.has(v.name) && v.dtype === 'float32')) return undefined;
    const [inputs, units] = kernel.shape as [number, number];
    plan.push({ kernel, bias, inputs, units, relu: activation === 'relu' });
  }
  if (plan.length === 0 || plan[0].inputs !== data.featureShape[0] || trained.size !== 2 * plan.length) return undefined;
  return new DenseLayersStep(wasm, plan, { batchSize: data.batchSize, order: method.variables.map((v) => v.name) });
}

class DenseLayersStep implements DenseStep {
  private readonly layers: Layer[];
  /** the batch's examples */
  private readonly x: number;
  private readonly scratch: tf.Tensor;
  /** our matMul, its large products shared with helper threads in the threaded build, as the optimizer's update of the kernels then is (product-helpers.ts) */
  private readonly matMul: WasmKernels['matMul'];
  private readonly batchSize: number;
  /** every trained variable's name, in the method's order, which the optimizer's slots follow */
  private readonly order: string[];

  constructor(
    private readonly wasm: { backend: WasmBackend; kernels: WasmKernels },
    plan: LayerPlan[],
    o: { batchSize: number; order: string[] },
  ) {
    const { batchSize } = o;
    this.batchSize = batchSize;
    this.order = o.order;
    const memory = memoryOf(wasm.backend);
    const shared = sharedKernels(wasm.kernels, { memory, module: kernelsModule(memory, { fused: FUSED_PRODUCTS }), threads: trainingThreads() });
    this.matMul = shared.matMul;
    shared.shareUpdates(plan.map((l) => l.kernel));
    const sizes = [batchSize * plan[0].inputs, ...plan.flatMap((l, i) => [batchSize * l.units, batchSize * l.units, i > 0 ? l.units * l.inputs : 0])];
    // one tensor holds every buffer, each at a multiple of ALIGN
    const slack = ALIGN / 4;
    this.scratch = freshTensor(wasm.backend, [sizes.reduce((a, n) => a + n + slack, slack)]).tensor;
    let at = wasm.backend.getMemoryOffset(this.scratch.dataId);
    const take = (floats: number) => {
      at = Math.ceil(at / ALIGN) * ALIGN;
      const offset = at;
      at += floats * 4;
      return offset;
    };
    this.x = take(sizes[0]);
    this.layers = plan.map((l, i) => ({
      ...l,
      out: take(batchSize * l.units),
      dy: take(batchSize * l.units),
      kernelT: i > 0 ? take(l.units * l.inputs) : undefined,
    }));
  }

  run(batch: Batch, sums: { loss: number; correct: number }, optimizer: tf.Optimizer): void {
    const { kernels, backend } = this.wasm;
    const rows = batch.size;
    if (rows > this.batchSize) throw new Error(`dense step: a batch of ${rows} rows, more than the ${this.batchSize} it was made for`);
    const heap = () => new Float32Array(memoryOf(backend).buffer);
    heap().set(batch.x, this.x / 4);
    const at = (v: tf.Variable) => backend.getMemoryOffset(v.dataId);
    let input = this.x;
    for (const l of this.layers) {
      this.matMul(input, at(l.kernel), at(l.bias), l.out, rows, l.inputs, l.units, l.inputs, 1, 0, l.units);
      if (l.relu) relu(heap(), l.out / 4, rows * l.units);
      input = l.out;
    }
    const last = this.layers[this.layers.length - 1];
    const classes = last.units;
    const h = heap();
    const task = crossEntropyOnHost(h.subarray(last.out / 4, last.out / 4 + rows * classes), batch.y, {
      rows,
      classes,
      grad: h.subarray(last.dy / 4, last.dy / 4 + rows * classes),
    });
    sums.loss += task.sum;
    sums.correct += task.correct;
    const grads: Record<string, tf.Tensor> = {};
    try {
      for (let i = this.layers.length - 1; i >= 0; i--) {
        const l = this.layers[i];
        if (l.relu) reluGrad(heap(), l.out / 4, l.dy / 4, rows * l.units);
        const x = i === 0 ? this.x : this.layers[i - 1].out;
        const dw = freshTensor(backend, [l.inputs, l.units]);
        grads[l.kernel.name] = dw.tensor;
        this.matMul(x, l.dy, 0, dw.offset, l.inputs, rows, l.units, 1, l.inputs, 0, l.units);
        const db = freshTensor(backend, [l.units]);
        grads[l.bias.name] = db.tensor;
        kernels.columnSums(l.dy, db.offset, rows, l.units);
        if (l.kernelT !== undefined) {
          kernels.transpose(at(l.kernel), l.kernelT, l.inputs, l.units);
          this.matMul(l.dy, l.kernelT, 0, this.layers[i - 1].dy, rows, l.units, l.inputs, l.units, 1, 0, l.inputs);
        }
      }
      optimizer.applyGradients(Object.fromEntries(this.order.map((name) => [name, grads[name]])));
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  dispose(): void {
    this.scratch.dispose();
  }
}

/** tf.relu in place, as the wasm Relu kernel gives it: 0 for every value not above 0 (-0 too), NaN kept. */
function relu(heap: Float32Array, from: number, n: number): void {
  for (let k = from; k < from + n; k++) if (heap[k] <= 0) heap[k] = 0;
}

/**
 * tfjs's relu gradient, dy·step(x), from the relu's output (above 0 exactly where its input is,
 * NaN where it is): dy, dy·0 (a signed zero) or NaN.
 */
function reluGrad(heap: Float32Array, out: number, dy: number, n: number): void {
  for (let k = 0; k < n; k++) {
    const o = heap[out + k];
    if (o <= 0) heap[dy + k] *= 0;
    else if (o !== o) heap[dy + k] = NaN;
  }
}
