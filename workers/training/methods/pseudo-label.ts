import tf = require('@tensorflow/tfjs');
import { METHOD_DEFAULTS } from '../../../src/schemas/params.js';
import { oneHot } from '../evaluate.js';
import { plainMethod, stopGradient, type MethodFactory } from './method.js';

/**
 * Pseudo-labelling (Lee 2013): the target examples the model predicts with a softmax confidence
 * of at least `threshold` are trained on as if the predicted class were their label. Labels
 * come from the model's own logits in the same pass, held constant; the term is averaged over
 * the whole target batch, so it weighs more as more of the target domain becomes confident.
 */
export const pseudoLabel: MethodFactory = ({ model, spec }) => {
  const weight = spec.method?.weight ?? METHOD_DEFAULTS.weight;
  const threshold = spec.method?.threshold ?? METHOD_DEFAULTS.threshold;
  return {
    ...plainMethod('pseudo_label', model),
    signals: ['pseudoLabelRate', 'pseudoLabelLoss'],
    terms: ({ target }) => {
      const { loss, rate } = pseudoLabelLoss(target!.logits, threshold);
      return { loss: tf.mul(loss, weight), signals: { pseudoLabelRate: rate, pseudoLabelLoss: loss } };
    },
  };
};

/** The masked cross-entropy against the confident predictions, and the share of the batch they are. */
export function pseudoLabelLoss(logits: tf.Tensor2D, threshold: number): { loss: tf.Scalar; rate: tf.Scalar } {
  const probabilities = tf.softmax(stopGradient(logits));
  const confident = tf.cast(tf.greaterEqual(tf.max(probabilities, 1), threshold), 'float32');
  const labels = oneHot(tf.argMax(probabilities, 1) as tf.Tensor1D, logits.shape[1]);
  const perExample = tf.losses.softmaxCrossEntropy(labels, logits, undefined, undefined, tf.Reduction.NONE);
  return { loss: tf.div(tf.sum(tf.mul(perExample, confident)), logits.shape[0]) as tf.Scalar, rate: tf.mean(confident) as tf.Scalar };
}
