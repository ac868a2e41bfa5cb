/**
 * tfjs's SGD and momentum optimizers with the update of each small variable fused into one pass
 * over its values in the wasm heap, instead of two (SGD) or four (momentum) kernels, each with
 * tfjs's per-kernel overhead (some 10-20 µs on wasm): the seed MLP's biases and output layer took
 * 12 of the 31 kernels of its step. The maths is tfjs's, operation by operation in float32: every
 * product and sum is rounded to float32 (Math.fround) as the kernels round theirs, so the values
 * are the same bits (test/workers/training/fused-update.test.ts).
 *
 * The new values go to fresh buffers that the variables are then assigned, as the kernels' outputs
 * are, not over the old ones: tfjs-backend-wasm keeps XNNPACK operators, with the right operand
 * of a product and a convolution's filter packed, by the tensor's data id, so a variable changed
 * in place would go on being multiplied by its old values.
 *
 * Large variables keep tfjs's kernels: XNNPACK's vectorised passes beat a scalar JavaScript loop
 * from a few thousand values on (measured: at 8192 values the four kernels took 0.8x the loop's
 * time, at 65,536 values 0.25x). So does every variable when the backend is not wasm, and the
 * first step, which creates the momentum slots as tfjs does.
 */
import * as tf from '@tensorflow/tfjs';

/** Variables with at most this many values are updated by the fused pass (see above). */
export const FUSED_MAX_SIZE = 4096;

/** What this file uses of tfjs-backend-wasm's BackendWasm. */
interface WasmBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

/** The wasm backend when it is the active one. */
function wasmBackend(): WasmBackend | undefined {
  return tf.getBackend() === 'wasm' ? (tf.backend() as WasmBackend) : undefined;
}

/** Whether the fused pass takes these tensors: small float32 tensors of the wasm backend. */
function fusable(backend: WasmBackend | undefined, tensors: tf.Tensor[]): backend is WasmBackend {
  return backend !== undefined && tensors.every((t) => t.size <= FUSED_MAX_SIZE && t.dtype === 'float32' && backend.refCount(t.dataId) > 0);
}

/**
 * Runs `pass` with heap views of `inputs` and of a fresh buffer for each of `outputs`, then
 * assigns each of `outputs` its buffer.
 */
function fused(backend: WasmBackend, outputs: tf.Variable[], inputs: tf.Tensor[], pass: (out: Float32Array[], input: Float32Array[]) => void): void {
  tf.tidy(() => {
    const fresh = outputs.map((v) => tf.engine().makeTensorFromTensorInfo(backend.makeOutput(v.shape, 'float32'), backend));
    pass(
      fresh.map((t) => backend.typedArrayFromHeap(t)),
      inputs.map((t) => backend.typedArrayFromHeap(t)),
    );
    outputs.forEach((v, i) => v.assign(fresh[i]));
  });
}

/** The gradients as tfjs's optimizers take them: by variable name, or a list of names and tensors. */
type Gradients = Parameters<tf.Optimizer['applyGradients']>[0] | Parameters<tf.MomentumOptimizer['applyGradients']>[0];
type NamedGradient = Extract<Gradients, unknown[]>[number];

function gradientList(grads: Gradients): NamedGradient[] {
  return Array.isArray(grads) ? grads : Object.keys(grads).map((name) => ({ name, tensor: grads[name] }));
}

/** tfjs's SGD (w += -lr·g), small variables fused. */
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
      fused(backend, [value], [value, g], ([w], [w0, gv]) => {
        for (let k = 0; k < w.length; k++) w[k] = Math.fround(Math.fround(c * gv[k]) + w0[k]);
      });
    }
    this.incrementIterations();
  }
}

/**
 * tfjs's momentum optimizer (v = m·v + g; w += -lr·v, or with Nesterov w += -lr·(g + m·v)),
 * small variables fused. The momentum slots stay tfjs's own (their names, getWeights and
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
    const f = Math.fround;
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
      fused(backend, [value, accumulation], [value, accumulation, g], ([w, v], [w0, v0, gv]) => {
        for (let k = 0; k < w.length; k++) {
          const next = f(f(m * v0[k]) + gv[k]);
          v[k] = next;
          w[k] = useNesterov ? f(f(c * f(gv[k] + f(next * m))) + w0[k]) : f(f(c * next) + w0[k]);
        }
      });
    });
    this.incrementIterations();
  }
}
