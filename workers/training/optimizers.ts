import tf = require('@tensorflow/tfjs');
import type { Hyperparameters, Optimizer as OptimizerSpec } from '../../src/schemas/job.js';
import { TrainingError } from '../../src/jobs/task.js';
import { FusedMomentumOptimizer, FusedSGDOptimizer } from './fused-update.js';

/**
 * The optimizer a spec asks for. SGD with momentum uses tfjs's momentum optimizer, whose update
 * (v = m·v + g; w -= lr·v) is PyTorch's SGD(momentum=m) without dampening; both SGD and momentum
 * update small variables in one fused pass on wasm (fused-update.ts), with the same results. Unset
 * parameters take tfjs's defaults, except those the schema documents otherwise.
 */
export function createOptimizer(spec: OptimizerSpec): tf.Optimizer {
  const lr = spec.learningRate;
  switch (spec.name) {
    case 'sgd':
      return spec.momentum !== undefined && spec.momentum > 0 ? new FusedMomentumOptimizer(lr, spec.momentum) : new FusedSGDOptimizer(lr);
    case 'momentum':
      return new FusedMomentumOptimizer(lr, spec.momentum ?? 0.9, spec.nesterov ?? false);
    case 'adam':
      return tf.train.adam(lr, spec.beta1, spec.beta2, spec.epsilon);
    case 'rmsprop':
      return tf.train.rmsprop(lr, spec.decay ?? 0.9, spec.momentum ?? 0, spec.epsilon, spec.centered ?? false);
  }
}

/**
 * Sets the rate of the following steps. SGD and momentum keep it as a scalar tensor that
 * setLearningRate() replaces; Adam and RMSProp read their `learningRate` field at every step.
 */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  const name = optimizer.getClassName();
  if (name === tf.SGDOptimizer.className || name === tf.MomentumOptimizer.className) {
    (optimizer as tf.SGDOptimizer).setLearningRate(learningRate);
  } else {
    (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
  }
}

/**
 * The learning rate of each step (counted from 0 over the whole training) under the spec's
 * schedule: `step` decays by epochs, `cosine` by steps, reaching its minimum at the last step.
 */
export function learningRateSchedule(hp: Hyperparameters, stepsPerEpoch: number): (step: number) => number {
  const lr = hp.optimizer.learningRate;
  const schedule = hp.lrSchedule;
  if (schedule === undefined) return () => lr;
  if (schedule.kind === 'step') {
    const { stepSize } = schedule;
    if (stepSize === undefined) {
      throw new TrainingError('invalid_spec', 'a step schedule needs stepSize: the epochs between two decays', {
        param: '/hyperparameters/lrSchedule/stepSize',
      });
    }
    const gamma = schedule.gamma ?? 0.1;
    return (step) => lr * gamma ** Math.floor(Math.floor(step / stepsPerEpoch) / stepSize);
  }
  const min = schedule.minLearningRate ?? 0;
  const last = hp.epochs * stepsPerEpoch - 1;
  return (step) => min + (lr - min) * 0.5 * (1 + Math.cos((Math.PI * Math.min(step, last)) / Math.max(last, 1)));
}

/** A tensor with the name it is saved under, as tfjs's optimizers and weight encoders take them. */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** Adam's running powers of beta1 and beta2: state that getWeights() leaves out. */
const ADAM_POWERS = ['accBeta1', 'accBeta2'] as const;
const ADAM_PREFIX = 'adam/';

/**
 * Everything the optimizer carries from one step to the next, by name: tfjs's getWeights()
 * (the iteration count and the slots) plus, for Adam, the running powers of beta that
 * setWeights() would otherwise recompute as pow(beta, iterations + 1), which is not bit for bit
 * the product the uninterrupted run accumulated. Tensors that are not the optimizer's own
 * variables (the iteration count) are the caller's to dispose.
 */
export async function optimizerState(optimizer: tf.Optimizer): Promise<NamedTensor[]> {
  const weights = await optimizer.getWeights();
  if (optimizer.getClassName() !== tf.AdamOptimizer.className) return weights;
  const adam = optimizer as unknown as Record<(typeof ADAM_POWERS)[number], tf.Variable>;
  return [...weights, ...ADAM_POWERS.map((k) => ({ name: ADAM_PREFIX + k, tensor: adam[k] }))];
}

/** Puts back what optimizerState() returned; the tensors stay the caller's. */
export async function restoreOptimizerState(optimizer: tf.Optimizer, state: NamedTensor[]): Promise<void> {
  const powers = state.filter((w) => w.name.startsWith(ADAM_PREFIX));
  await optimizer.setWeights(state.filter((w) => !w.name.startsWith(ADAM_PREFIX)));
  const adam = optimizer as unknown as Record<string, tf.Variable>;
  for (const { name, tensor } of powers) adam[name.slice(ADAM_PREFIX.length)].assign(tensor);
}

/**
 * Releases every tensor the optimizer holds. tfjs 4.22's MomentumOptimizer.dispose() skips
 * its parent's, leaking the learning-rate scalar once per job in a long-lived child.
 */
export function disposeOptimizer(optimizer: tf.Optimizer): void {
  optimizer.dispose();
  // not instanceof: tfjs optimizers answer instanceof by duck typing, so an Adam "is" a MomentumOptimizer
  if (optimizer.getClassName() === tf.MomentumOptimizer.className) tf.SGDOptimizer.prototype.dispose.call(optimizer);
}
