import tf = require('@tensorflow/tfjs');
import { Batcher, type Dataset } from '../data.js';
import { inferenceBatchRows } from '../eval-batch-rows.js';
import { TrainingError } from '../../../src/jobs/task.js';
import { plainMethod, type MethodFactory } from './method.js';

/**
 * AdaBN (Li et al. 2016): train on the source as usual, then give every batch-norm layer the
 * mean and variance of its input over the whole target set, so that the network normalises
 * target features by target statistics.
 */
export const adabn: MethodFactory = ({ model }) => {
  const layers = batchNormLayers(model);
  if (layers.length === 0) {
    throw new TrainingError(
      'invalid_spec',
      `method adabn recomputes batch-norm statistics, but model ${model.name} has no BatchNormalization layer; use a model with batch norm, e.g. architecture { "kind": "cnn", "batchNorm": true }`,
      { param: '/method/kind' },
    );
  }
  return {
    ...plainMethod('adabn', model),
    finish: async ({ model: trained, target }) => {
      if (target === undefined) throw new TrainingError('invalid_spec', 'method adabn needs data.target', { param: '/data/target' });
      await recomputeBatchNorm(trained, batchNormLayers(trained), target);
      return { adaptedBatchNormLayers: layers.length };
    },
  };
};

function batchNormLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
}

/**
 * Sets each layer's moving mean and variance to the population statistics of its input over
 * `data`, from the input upwards, since a layer's input depends on the statistics below it.
 * Batch moments are merged exactly in double precision (Chan et al.'s pairwise update).
 */
export async function recomputeBatchNorm(model: tf.LayersModel, layers: tf.layers.Layer[], data: Dataset): Promise<void> {
  const batcher = new Batcher(data, inferenceBatchRows(model, data.files));
  for (const layer of layers) {
    const upTo = tf.model({ inputs: model.inputs, outputs: layer.input });
    let count = 0;
    let mean: Float64Array | undefined;
    let m2: Float64Array | undefined;
    for (let step = 0; step < batcher.steps; step++) {
      const batch = batcher.fill(step);
      const [batchMean, batchVariance, n] = tf.tidy(() => {
        const h = upTo.apply(tf.tensor(batch.x, batch.shape, 'float32'), { training: false }) as tf.Tensor;
        const axis = ((layer.getConfig().axis as number) + h.rank) % h.rank;
        const reduced = h.shape.map((_, i) => i).filter((i) => i !== axis);
        const moments = tf.moments(h, reduced);
        return [moments.mean, moments.variance, h.size / h.shape[axis]] as const;
      });
      const [bm, bv] = await Promise.all([batchMean.data(), batchVariance.data()]);
      tf.dispose([batchMean, batchVariance]);
      mean ??= new Float64Array(bm.length);
      m2 ??= new Float64Array(bm.length);
      const total = count + n;
      for (let c = 0; c < bm.length; c++) {
        const delta = bm[c] - mean[c];
        mean[c] += (delta * n) / total;
        m2[c] += bv[c] * n + (delta * delta * count * n) / total;
      }
      count = total;
    }
    const stat = (suffix: string) => layer.weights.find((w) => w.originalName.endsWith(suffix))!;
    tf.tidy(() => {
      stat('moving_mean').write(tf.tensor1d(Float32Array.from(mean!)));
      stat('moving_variance').write(tf.tensor1d(Float32Array.from(m2!, (v) => v / count)));
    });
  }
}
