import tf = require('@tensorflow/tfjs');
import { METHOD_DEFAULTS } from '../../../src/schemas/params.js';
import { plainMethod, type MethodFactory } from './method.js';

/**
 * Deep CORAL (Sun & Saenko 2016): the distance between the covariances of source and target
 * features, ||C_S - C_T||_F^2 / (4 d^2), added to the task loss with `weight`.
 */
export const coral: MethodFactory = ({ model, spec }) => {
  const weight = spec.method?.weight ?? METHOD_DEFAULTS.weight;
  return {
    ...plainMethod('coral', model),
    signals: ['coral'],
    terms: ({ source, target }) => {
      const distance = coralLoss(source.features, target!.features);
      return { loss: tf.mul(distance, weight), signals: { coral: distance } };
    },
  };
};

export function coralLoss(source: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  const d = source.shape[1];
  return tf.div(tf.sum(tf.square(tf.sub(covariance(source), covariance(target)))), 4 * d * d);
}

/**
 * The unbiased covariance of the rows of x, [d, d]. A batch of one row has none; it counts as
 * zero, so a one-example tail batch adds nothing instead of a division by zero.
 */
export function covariance(x: tf.Tensor2D): tf.Tensor2D {
  const [n, d] = x.shape;
  if (n < 2) return tf.zeros([d, d]);
  const centred = tf.sub(x, tf.mean(x, 0, true));
  // An explicit transpose: the wasm backend runs matMul with transposeA far slower.
  return tf.div(tf.matMul(tf.transpose(centred), centred), n - 1);
}
