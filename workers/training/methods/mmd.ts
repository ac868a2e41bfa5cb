import tf = require('@tensorflow/tfjs');
import { METHOD_DEFAULTS } from '../../../src/schemas/params.js';
import { plainMethod, stopGradient, type MethodFactory } from './method.js';

/**
 * DAN's multi-kernel MMD (Long et al. 2015) between source and target features, added to the
 * task loss with `weight`.
 */
export const mmd: MethodFactory = ({ model, spec }) => {
  const weight = spec.method?.weight ?? METHOD_DEFAULTS.weight;
  const kernels = spec.method?.kernels ?? METHOD_DEFAULTS.kernels;
  const multiplier = spec.method?.kernelMultiplier ?? METHOD_DEFAULTS.kernelMultiplier;
  return {
    ...plainMethod('mmd', model),
    signals: ['mmd'],
    terms: ({ source, target }) => {
      const distance = mmdLoss(source.features, target!.features, kernels, multiplier);
      return { loss: tf.mul(distance, weight), signals: { mmd: distance } };
    },
  };
};

/**
 * The biased estimate of the squared MMD, mean K(s, s') + mean K(t, t') - 2 mean K(s, t), with K
 * a sum of `kernels` Gaussian kernels exp(-||a - b||^2 / h). The bandwidths h are powers of
 * `multiplier` centred on the mean squared distance between distinct points of the batch (the
 * usual choice in DAN's implementations), held constant for the gradient.
 */
export function mmdLoss(source: tf.Tensor2D, target: tf.Tensor2D, kernels: number, multiplier: number): tf.Scalar {
  const ns = source.shape[0];
  const nt = target.shape[0];
  const n = ns + nt;
  const z = tf.concat([source, target]);
  const norms = tf.sum(tf.square(z), 1, true);
  const distances = tf.relu(tf.sub(tf.add(norms, tf.transpose(norms)), tf.mul(tf.matMul(z, tf.transpose(z)), 2)));
  const centre = tf.maximum(stopGradient(tf.div(tf.sum(distances), n * n - n)), 1e-12);
  const k = tf.addN(Array.from({ length: kernels }, (_, i) => tf.exp(tf.neg(tf.div(distances, tf.mul(centre, multiplier ** (i - Math.floor(kernels / 2))))))));
  const block = (row: number, col: number, rows: number, cols: number) => tf.mean(tf.slice(k, [row, col], [rows, cols]));
  return tf.sub(tf.add(block(0, 0, ns, ns), block(ns, ns, nt, nt)), tf.mul(block(0, ns, ns, nt), 2)) as tf.Scalar;
}
