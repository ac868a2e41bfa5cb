import * as tf from '@tensorflow/tfjs';
import type { Optimizer as OptimizerSpec } from '../src/schemas/job.js';

/**
 * The optimizer a spec asks for. SGD with momentum uses tfjs's momentum optimizer, whose update
 * (v = m·v + g; w -= lr·v) is PyTorch's SGD(momentum=m) without dampening or Nesterov.
 * Adam leaves unset parameters at tfjs's defaults.
 */
export function createOptimizer(spec: OptimizerSpec): tf.Optimizer {
  switch (spec.name) {
    case 'sgd':
      return spec.momentum !== undefined && spec.momentum > 0
        ? tf.train.momentum(spec.learningRate, spec.momentum)
        : tf.train.sgd(spec.learningRate);
    case 'adam':
      return tf.train.adam(spec.learningRate, spec.beta1, spec.beta2, spec.epsilon);
  }
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
