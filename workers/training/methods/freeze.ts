import type * as tf from '@tensorflow/tfjs';
import { METHOD_DEFAULTS } from '../../../src/schemas/methods.js';
import { TrainingError } from '../../../src/jobs/task.js';
import { plainMethod, type MethodFactory } from './method.js';

/**
 * Freezing: only the last `trainableLayers` layers with trainable weights are trained (by default
 * one: the head, new or not). The others keep their weights bit for bit; the training loop also
 * runs them in inference mode, so their batch-norm statistics stay as well.
 */
export const freeze: MethodFactory = ({ model, spec }) => {
  const count = spec.strategy?.trainableLayers ?? METHOD_DEFAULTS.trainableLayers;
  const layers = model.layers.filter((l) => l.trainableWeights.length > 0);
  if (count > layers.length) {
    throw new TrainingError(
      'invalid_spec',
      `strategy.trainableLayers is ${count}, but model ${model.name} has ${layers.length} layers with trainable weights (${layers.map((l) => l.name).join(', ')})`,
      { param: '/strategy/trainableLayers' },
    );
  }
  const trained = layers.slice(layers.length - count);
  return { ...plainMethod('freeze', model), variables: trained.flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable)) };
};
