/**
 * tfjs's SGD and momentum optimizers with the update of each variable fused into one pass over
 * its values in the wasm heap, instead of two (SGD) or four (momentum) kernels, each with tfjs's
 * per-kernel overhead (some 10-20 µs on wasm) and its own pass over memory: the pass is one of
 * our WASM SIMD kernels (wasm-kernels.ts), four values at a time. The maths is tfjs's, operation
 * by operation in float32: every product and sum is rounded to float32 as the kernels round
 * theirs, so the values are the same bits (test/workers/training/fused-update.test.ts).
 *
 * The new values go to fresh buffers that the variables are then assigned, as the kernels' outputs
 * are, not over the old ones: tfjs-backend-wasm keeps XNNPACK operators, with the right operand
 * of a product and a convolution's filter packed, by the tensor's data id, so a variable changed
 * in place would go on being multiplied by its old values.
 *
 * Every variable keeps tfjs's kernels when the backend is not wasm, and on the first step, which
 * creates the momentum slots as tfjs does.
 */
import tf = require('@tensorflow/tfjs');
import { runUpdate } from './product-helpers.js';
import { freshTensor, wasmKernels, type WasmBackend } from './wasm-kernels.js';

/** Whether the fused pass takes these tensors: float32 tensors of the wasm backend. */
function fusable(backend: WasmBackend, tensors: tf.Tensor[]): boolean {
  return tensors.every((t) => t.dtype === 'float32' && backend.refCount(t.dataId) > 0);
}

/**
 * Runs `pass` with the heap offsets of `inputs` and of a fresh buffer for each of `outputs`,
 * then assigns each of `outputs` its buffer.
 */
function fused(backend: WasmBackend, outputs: tf.Variable[], inputs: tf.Tensor[], pass: (out: number[], input: number[]) => void): void {
  tf.tidy(() => {
    const fresh = outputs.map((v) => freshTensor(backend, v.shape));
    pass(
      fresh.map((f) => f.offset),
      inputs.map((t) => backend.getMemoryOffset(t.dataId)),
    );
    outputs.forEach((v, i) => v.assign(fresh[i].tensor));
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
    const wasm = wasmKernels();
    // the float32 value the kernels multiply by
    const c = this.c.dataSync()[0];
    for (const { name, tensor: g } of gradientList(grads)) {
      // tfjs skips a variable without a gradient too
      if (g == null) continue;
      const value = tf.engine().registeredVariables[name];
      if (wasm === undefined || !fusable(wasm.backend, [value, g])) {
        // tfjs's SGDOptimizer.applyGradients
        tf.tidy(() => value.assign(tf.add(tf.mul(this.c, g), value)));
        continue;
      }
      fused(wasm.backend, [value], [value, g], ([w], [w0, gv]) => runUpdate(wasm.kernels, 'sgd', value, [w0, gv, w, value.size, c]));
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
    const wasm = wasmKernels();
    // the float32 values of the scalars the kernels multiply by
    const m = mScalar.dataSync()[0];
    const c = this.c.dataSync()[0];
    list.forEach(({ name, tensor: g }, i) => {
      if (g == null) return;
      const value = tf.engine().registeredVariables[name];
      const accumulation = accumulations[i]!.variable;
      if (wasm === undefined || !fusable(wasm.backend, [value, accumulation, g])) {
        // tfjs's MomentumOptimizer.applyGradients, op for op
        tf.tidy(() => {
          const next = tf.add(tf.mul(mScalar, accumulation), g);
          const newValue = useNesterov ? tf.add(tf.mul(this.c, tf.add(g, tf.mul(next, mScalar))), value) : tf.add(tf.mul(this.c, next), value);
          accumulation.assign(next);
          value.assign(newValue);
        });
        return;
      }
      const pass = useNesterov ? 'nesterov' : 'momentum';
      fused(wasm.backend, [value, accumulation], [value, accumulation, g], ([w, v], [w0, v0, gv]) =>
        runUpdate(wasm.kernels, pass, value, [w0, v0, gv, w, v, value.size, m, c]),
      );
    });
    this.incrementIterations();
  }
}
