import tf = require('@tensorflow/tfjs');
import { METHOD_DEFAULTS } from '../../../src/schemas/params.js';
import { domainClassifier } from './domain-classifier.js';
import { trainableVariables, type MethodFactory } from './method.js';

/**
 * DANN (Ganin et al. 2016): a domain classifier (one hidden layer, then one logit: source or
 * target) learns to tell source features from target features, while a gradient-reversal layer
 * between the features and the classifier makes the feature extractor learn to fool it. The
 * reversal's strength follows Ganin's schedule lambda_p = 2 / (1 + exp(-gamma p)) - 1, p the
 * share of training done, so the domain gradients of the first, noisy steps stay small.
 */
export const dann: MethodFactory = ({ model, spec, feature, seed }) => {
  const weight = spec.method?.weight ?? METHOD_DEFAULTS.weight;
  const gamma = spec.method?.gamma ?? METHOD_DEFAULTS.gamma;
  const hidden = spec.method?.hiddenUnits ?? METHOD_DEFAULTS.hiddenUnits;
  const { state, classify } = domainClassifier({ kind: 'dann', inputSize: feature.size, hidden, seed });
  return {
    name: 'dann',
    variables: [...trainableVariables(model), ...Object.values(state)],
    state,
    signals: ['domainLoss', 'domainAccuracy', 'grlLambda'],
    terms: ({ source, target, progress }) => {
      const lambda = ganinLambda(progress, gamma);
      const features = tf.concat([source.features, target!.features]);
      const logits = classify(gradientReversal(features, lambda));
      const domains = tf.concat([tf.zeros([source.features.shape[0], 1]), tf.ones([target!.features.shape[0], 1])]);
      const domainLoss = tf.losses.sigmoidCrossEntropy(domains, logits) as tf.Scalar;
      const domainAccuracy = tf.mean(tf.cast(tf.equal(tf.cast(tf.greater(logits, 0), 'float32'), domains), 'float32')) as tf.Scalar;
      return { loss: tf.mul(domainLoss, weight), signals: { domainLoss, domainAccuracy, grlLambda: tf.scalar(lambda) } };
    },
    dispose: () => Object.values(state).forEach((v) => v.dispose()),
  };
};

/** Ganin et al.'s adaptation factor: 0 at the start of training, rising to nearly 1. */
export function ganinLambda(progress: number, gamma: number): number {
  return 2 / (1 + Math.exp(-gamma * progress)) - 1;
}

/** The identity going forward; going back, the gradient times -lambda. */
export function gradientReversal<T extends tf.Tensor>(x: T, lambda: number): T {
  return tf.customGrad((input) => ({ value: tf.clone(input as tf.Tensor), gradFunc: (dy: tf.Tensor) => tf.mul(dy, -lambda) }))(x) as T;
}
