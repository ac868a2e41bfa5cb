/**
 * What a training-mode forward pass is, whichever way it runs (network.ts's layer steps, or
 * functional-forward.ts over a functional model's graph).
 */
import tf = require('@tensorflow/tfjs');

export interface ForwardResult {
  logits: tf.Tensor2D;
  /** the feature layer's output, one flat row per example */
  features: tf.Tensor2D;
}

/** The logits and features of a batch `x` [rows, ...featureShape]. */
export type Forward = (x: tf.Tensor) => ForwardResult;

/** The layer whose output the methods align; `layer` undefined means the model's input. */
export interface FeatureLayer {
  layer: tf.layers.Layer | undefined;
  name: string;
  /** values per example */
  size: number;
}

/** A batch's values one flat row per example, as `features` are. */
export function flatRows(x: tf.Tensor): tf.Tensor2D {
  return (x.rank === 2 ? x : tf.reshape(x, [x.shape[0], -1])) as tf.Tensor2D;
}
