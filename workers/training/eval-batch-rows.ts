/**
 * The rows of an inference-mode batch for a model (evaluation, validators, adabn, the feature
 * cache, predictions): the rule is src/jobs/dataset-memory.ts's, shared with the admission
 * estimate; this counts its model side on the tfjs model, as the estimate counts it on its layers.
 */
import type tf = require('@tensorflow/tfjs');
import { evalBatchRows, type StoredFeatures } from '../../src/jobs/dataset-memory.js';

/** The values per example of the model's largest layer output. */
function largestLayerOutput(model: tf.LayersModel): number {
  let largest = 0;
  for (const layer of model.layers) {
    const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (number | null)[][];
    for (const shape of shapes)
      largest = Math.max(
        largest,
        shape.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1),
      );
  }
  return largest;
}

export const inferenceBatchRows = (model: tf.LayersModel, d: Pick<StoredFeatures, 'featureShape' | 'numExamples'>) =>
  evalBatchRows(d, { largestLayerOutput: largestLayerOutput(model) });
