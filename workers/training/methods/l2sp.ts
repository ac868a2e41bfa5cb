import tf = require('@tensorflow/tfjs');
import { METHOD_DEFAULTS } from '../../../src/schemas/params.js';
import { plainMethod, type MethodFactory } from './method.js';

/** A trained variable and the value it is pulled toward. */
export interface Anchored {
  variable: tf.Variable;
  anchor: tf.Tensor;
}

/**
 * L2-SP (Li, Grandvalet & Davoine 2018): every weight is trained, with the penalty
 * alpha/2 ||w_s - w0_s||^2 on the weights that came from the base model (w0_s their starting
 * values) plus beta/2 ||w_h||^2 on new layers (a new head), which have no starting point worth
 * keeping. Added to the mean task loss, this is the seed's 1/2 ||w - w0||^2 + lambda/n sum L
 * divided by lambda, with alpha = 1/lambda.
 */
export const l2sp: MethodFactory = ({ model, spec, newLayers }) => {
  const alpha = spec.strategy?.alpha ?? METHOD_DEFAULTS.alpha;
  const beta = spec.strategy?.beta ?? METHOD_DEFAULTS.beta;
  const anchored: Anchored[] = [];
  const fresh: tf.Variable[] = [];
  for (const layer of model.layers) {
    for (const w of layer.trainableWeights) {
      const variable = w.read() as tf.Variable;
      if (newLayers.has(layer.name)) fresh.push(variable);
      else anchored.push({ variable, anchor: tf.clone(variable) });
    }
  }
  return {
    ...plainMethod('l2sp', model),
    signals: ['penalty'],
    terms: () => {
      const penalty = l2spPenalty(anchored, alpha, fresh, beta);
      return { loss: penalty, signals: { penalty } };
    },
    dispose: () => anchored.forEach((a) => a.anchor.dispose()),
  };
};

/** alpha/2 sum ||w - w0||^2 over `anchored` plus beta/2 sum ||w||^2 over `fresh`. */
export function l2spPenalty(anchored: Anchored[], alpha: number, fresh: tf.Variable[], beta: number): tf.Scalar {
  const toAnchor = anchored.map(({ variable, anchor }) => tf.sum(tf.square(tf.sub(variable, anchor))));
  const size = fresh.map((v) => tf.sum(tf.square(v)));
  const half = (terms: tf.Tensor[], weight: number) => (terms.length === 0 ? tf.scalar(0) : tf.mul(tf.addN(terms), weight / 2));
  return tf.add(half(toAnchor, alpha), half(size, beta)) as tf.Scalar;
}
