import tf = require('@tensorflow/tfjs');
import { METHOD_DEFAULTS } from '../../../src/schemas/params.js';
import { plainMethod, stopGradient, type MethodFactory } from './method.js';
import { rowEntropy } from '../validators.js';

/**
 * MCC, Minimum Class Confusion (Jin et al. 2020): on each target batch, the predictions at
 * temperature T, Y = softmax(z / T), give a class-correlation matrix C = Yᵀ W Y, each example
 * weighted by W = 1 + e^{-H(y)} (normalised to mean 1, held constant); after category
 * normalisation, the loss is the confusion between classes, the off-diagonal mass
 * (sum C - trace C) / classes. Needs no domain classifier and no features.
 */
export const mcc: MethodFactory = ({ model, spec }) => {
  const weight = spec.method?.weight ?? METHOD_DEFAULTS.weight;
  const temperature = spec.method?.temperature ?? METHOD_DEFAULTS.temperature;
  return {
    ...plainMethod('mcc', model),
    signals: ['classConfusion'],
    terms: ({ target }) => {
      const confusion = mccLoss(target!.logits, temperature);
      return { loss: tf.mul(confusion, weight), signals: { classConfusion: confusion } };
    },
  };
};

export function mccLoss(logits: tf.Tensor2D, temperature: number): tf.Scalar {
  const [n, classes] = logits.shape;
  const y = tf.softmax(tf.div(logits, temperature)) as tf.Tensor2D;
  const h = tf.add(1, tf.exp(tf.neg(rowEntropy(stopGradient(y)))));
  const w = tf.div(tf.mul(h, n), tf.sum(h));
  const c = tf.matMul(tf.transpose(tf.mul(y, tf.reshape(w, [n, 1]))), y);
  // As the authors' code divides, torch's broadcasting: column j by the sum of row j (C is symmetric).
  const normalised = tf.div(c, tf.sum(c, 1));
  return tf.div(tf.sub(tf.sum(normalised), tf.sum(tf.mul(normalised, tf.eye(classes)))), classes) as tf.Scalar;
}
