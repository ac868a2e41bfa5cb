/**
 * tfjs's SGD and momentum optimizers with the update of each variable fused into one pass over
 * its values in the wasm heap, instead of two (SGD) or four (momentum) kernels, each with tfjs's
 * per-kernel overhead (some 10-20 µs on wasm) and its own pass over memory. The pass is a small
 * hand-written WASM SIMD module (fused-update.wat; tfjs-backend-wasm has no such kernel and no
 * way to add one to its own module), instantiated on tfjs-backend-wasm's memory, four values at
 * a time. The maths is tfjs's, operation by operation in float32: every product and sum is
 * rounded to float32 as the kernels round theirs, so the values are the same bits
 * (test/workers/training/fused-update.test.ts).
 *
 * The new values go to fresh buffers that the variables are then assigned, as the kernels' outputs
 * are, not over the old ones: tfjs-backend-wasm keeps XNNPACK operators, with the right operand
 * of a product and a convolution's filter packed, by the tensor's data id, so a variable changed
 * in place would go on being multiplied by its old values.
 *
 * Every variable keeps tfjs's kernels when the backend is not wasm, and on the first step, which
 * creates the momentum slots as tfjs does.
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_UPDATE_WASM } from './fused-update-wasm.js';

/** The functions of fused-update.wat: tensors by their values' byte offset in the heap, `n` values each. */
interface UpdateKernels {
  sgd: (w0: number, g: number, w: number, n: number, c: number) => void;
  momentum: (w0: number, v0: number, g: number, w: number, v: number, n: number, m: number, c: number) => void;
  nesterov: (w0: number, v0: number, g: number, w: number, v: number, n: number, m: number, c: number) => void;
}

/** What this file uses of tfjs-backend-wasm's BackendWasm. */
interface WasmBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  getMemoryOffset(dataId: tf.DataId): number;
  /** the emscripten module: the threaded build keeps its (shared) memory as wasmMemory, the others export it */
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
}

/** The update kernels instantiated on each wasm memory (one per process in practice). */
const instances = new WeakMap<WebAssembly.Memory, UpdateKernels>();

function updateKernels(backend: WasmBackend): UpdateKernels {
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error("tfjs-backend-wasm's module shows no WebAssembly.Memory: the fused update (workers/training/fused-update.ts) does not fit this tfjs version");
  }
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    const bytes = Buffer.from(FUSED_UPDATE_WASM[memory.buffer instanceof SharedArrayBuffer ? 'shared' : 'plain'], 'base64');
    kernels = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as unknown as UpdateKernels;
    instances.set(memory, kernels);
  }
  return kernels;
}

/** The wasm backend when it is the active one. */
function wasmBackend(): WasmBackend | undefined {
  return tf.getBackend() === 'wasm' ? (tf.backend() as WasmBackend) : undefined;
}

/** Whether the fused pass takes these tensors: float32 tensors of the wasm backend. */
function fusable(backend: WasmBackend | undefined, tensors: tf.Tensor[]): backend is WasmBackend {
  return backend !== undefined && tensors.every((t) => t.dtype === 'float32' && backend.refCount(t.dataId) > 0);
}

/**
 * Runs `pass` with the heap offsets of `inputs` and of a fresh buffer for each of `outputs`,
 * then assigns each of `outputs` its buffer.
 */
function fused(backend: WasmBackend, outputs: tf.Variable[], inputs: tf.Tensor[], pass: (out: number[], input: number[]) => void): void {
  tf.tidy(() => {
    const fresh = outputs.map((v) => tf.engine().makeTensorFromTensorInfo(backend.makeOutput(v.shape, 'float32'), backend));
    const offset = (t: tf.Tensor) => backend.getMemoryOffset(t.dataId);
    pass(fresh.map(offset), inputs.map(offset));
    outputs.forEach((v, i) => v.assign(fresh[i]));
  });
}

/** The gradients as tfjs's optimizers take them: by variable name, or a list of names and tensors. */
type Gradients = Parameters<tf.Optimizer['applyGradients']>[0] | Parameters<tf.MomentumOptimizer['applyGradients']>[0];
type NamedGradient = Extract<Gradients, unknown[]>[number];

function gradientList(grads: Gradients): NamedGradient[] {
  return Array.isArray(grads) ? grads : Object.keys(grads).map((name) => ({ name, tensor: grads[name] }));
}

/** tfjs's SGD (w += -lr·g), fused. */
export class FusedSGDOptimizer extends tf.SGDOptimizer {
  override applyGradients(grads: Gradients): void {
    const backend = wasmBackend();
    // the float32 value the kernels multiply by
    const c = this.c.dataSync()[0];
    for (const { name, tensor: g } of gradientList(grads)) {
      // tfjs skips a variable without a gradient too
      if (g == null) continue;
      const value = tf.engine().registeredVariables[name];
      if (!fusable(backend, [value, g])) {
        // tfjs's SGDOptimizer.applyGradients
        tf.tidy(() => value.assign(tf.add(tf.mul(this.c, g), value)));
        continue;
      }
      const kernels = updateKernels(backend);
      fused(backend, [value], [value, g], ([w], [w0, gv]) => kernels.sgd(w0, gv, w, value.size, c));
    }
    this.incrementIterations();
  }
}

/**
 * tfjs's momentum optimizer (v = m·v + g; w += -lr·v, or with Nesterov w += -lr·(g + m·v)),
 * fused. The momentum slots stay tfjs's own (their names, getWeights and
 * setWeights), so checkpoints do not change.
 */
export class FusedMomentumOptimizer extends tf.MomentumOptimizer {
  override applyGradients(grads: Gradients): void {
    // tfjs keeps these private; read here as its own applyGradients reads them
    const own = this as unknown as { accumulations: ({ variable: tf.Variable } | undefined)[]; m: tf.Scalar; useNesterov: boolean };
    const { accumulations, m: mScalar, useNesterov } = own;
    const list = gradientList(grads);
    // The first step creates the slots, tfjs's way.
    if (list.some((_, i) => accumulations[i] == null)) return super.applyGradients(list);
    const backend = wasmBackend();
    // the float32 values of the scalars the kernels multiply by
    const m = mScalar.dataSync()[0];
    const c = this.c.dataSync()[0];
    list.forEach(({ name, tensor: g }, i) => {
      if (g == null) return;
      const value = tf.engine().registeredVariables[name];
      const accumulation = accumulations[i]!.variable;
      if (!fusable(backend, [value, accumulation, g])) {
        // tfjs's MomentumOptimizer.applyGradients, op for op
        tf.tidy(() => {
          const next = tf.add(tf.mul(mScalar, accumulation), g);
          const newValue = useNesterov ? tf.add(tf.mul(this.c, tf.add(g, tf.mul(next, mScalar))), value) : tf.add(tf.mul(this.c, next), value);
          accumulation.assign(next);
          value.assign(newValue);
        });
        return;
      }
      const kernels = updateKernels(backend);
      const pass = useNesterov ? kernels.nesterov : kernels.momentum;
      fused(backend, [value, accumulation], [value, accumulation, g], ([w, v], [w0, v0, gv]) => pass(w0, v0, gv, w, v, value.size, m, c));
    });
    this.incrementIterations();
  }
}
