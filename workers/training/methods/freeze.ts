import type tf = require('@tensorflow/tfjs');
import { TrainingError } from '../../../src/jobs/task.js';
import { plainMethod, type MethodFactory } from './method.js';

/**
 * Freezing: only the layers from `trainFrom` on, or the last `trainableLayers` layers with
 * trainable weights, are trained (by default the new head's layers, else the last one). The
 * others keep their weights bit for bit; the training loop also runs them in inference mode, so
 * their batch-norm statistics stay as well.
 */
export const freeze: MethodFactory = ({ model, spec, newLayers }) => {
  const layers = model.layers.filter((l) => l.trainableWeights.length > 0);
  const from = spec.strategy?.trainFrom;
  let trained: tf.layers.Layer[];
  if (from !== undefined) {
    const at = model.layers.findIndex((l) => l.name === from);
    if (at < 0)
      throw new TrainingError('invalid_spec', `strategy.trainFrom is '${from}', but model ${model.name} has no layer of that name`, {
        param: '/strategy/trainFrom',
      });
    trained = model.layers.slice(at).filter((l) => l.trainableWeights.length > 0);
  } else {
    const count = spec.strategy?.trainableLayers ?? Math.max(1, layers.filter((l) => newLayers.has(l.name)).length);
    if (count > layers.length) {
      throw new TrainingError(
        'invalid_spec',
        `strategy.trainableLayers is ${count}, but model ${model.name} has ${layers.length} layers with trainable weights (${layers.map((l) => l.name).join(', ')})`,
        { param: '/strategy/trainableLayers' },
      );
    }
    trained = layers.slice(layers.length - count);
  }
  return { ...plainMethod('freeze', model), variables: trained.flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable)) };
};
