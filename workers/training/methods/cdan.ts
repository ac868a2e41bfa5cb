import tf = require('@tensorflow/tfjs');
import { METHOD_DEFAULTS } from '../../../src/schemas/params.js';
import { ganinLambda, gradientReversal } from './dann.js';
import { domainClassifier } from './domain-classifier.js';
import { stopGradient, trainableVariables, type MethodFactory } from './method.js';
import { rowEntropy } from '../validators.js';

/** Past this many values in f ⊗ g, the randomized multilinear map replaces the outer product (CDAN's own choice: 4096 → 1024). */
export const CDAN_MULTILINEAR_MAX = 4096;
export const CDAN_RANDOM_DIM = 1024;

/**
 * CDAN+E (Long et al. 2018): DANN's domain classifier and gradient reversal, conditioned on the
 * predictions: it sees the multilinear map f ⊗ g of the features f and the softmax predictions g
 * (held constant, as in the authors' code), or its randomized version (R_f f) ⊙ (R_g g) / sqrt(d)
 * with fixed Gaussian R when f ⊗ g is large. With entropy conditioning, each example's domain
 * loss is weighted by 1 + e^{-H(g)}, normalised to sum to one within each domain, so that
 * confident predictions (the transferable examples) weigh more.
 */
export const cdan: MethodFactory = ({ model, spec, feature, seed }) => {
  const weight = spec.method?.weight ?? METHOD_DEFAULTS.weight;
  const gamma = spec.method?.gamma ?? METHOD_DEFAULTS.gamma;
  const hidden = spec.method?.hiddenUnits ?? METHOD_DEFAULTS.hiddenUnits;
  const entropyConditioning = spec.method?.entropyConditioning ?? METHOD_DEFAULTS.entropyConditioning;
  const classes = model.outputs[0].shape[1] as number;
  const conditioning = conditioningMap(feature.size, classes, seed);
  const { state, classify } = domainClassifier({ kind: 'cdan', inputSize: conditioning.size, hidden, seed });
  return {
    name: 'cdan',
    variables: [...trainableVariables(model), ...Object.values(state)],
    state,
    signals: ['domainLoss', 'domainAccuracy', 'grlLambda'],
    terms: ({ source, target, progress }) => {
      const lambda = ganinLambda(progress, gamma);
      const t = target!;
      const features = tf.concat([source.features, t.features]);
      const predictions = stopGradient(tf.softmax(tf.concat([source.logits, t.logits])) as tf.Tensor2D);
      const logits = classify(gradientReversal(conditioning.apply(features, predictions), lambda));
      const domains = tf.concat([tf.zeros([source.features.shape[0], 1]), tf.ones([t.features.shape[0], 1])]) as tf.Tensor2D;
      const weights = entropyConditioning ? entropyWeights(predictions, source.features.shape[0]) : undefined;
      const domainLoss = weightedDomainLoss(domains, logits, weights);
      const domainAccuracy = tf.mean(tf.cast(tf.equal(tf.cast(tf.greater(logits, 0), 'float32'), domains), 'float32')) as tf.Scalar;
      return { loss: tf.mul(domainLoss, weight), signals: { domainLoss, domainAccuracy, grlLambda: tf.scalar(lambda) } };
    },
    dispose: () => {
      Object.values(state).forEach((v) => v.dispose());
      conditioning.dispose();
    },
  };
};

/** What the domain classifier of CDAN reads: f ⊗ g flattened, or its randomized version when that is large. */
export interface Conditioning {
  size: number;
  apply(features: tf.Tensor2D, predictions: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

export function conditioningMap(featureSize: number, classes: number, seed: number): Conditioning {
  if (featureSize * classes <= CDAN_MULTILINEAR_MAX) {
    return { size: featureSize * classes, apply: multilinear, dispose: () => {} };
  }
  const rf = tf.randomNormal([featureSize, CDAN_RANDOM_DIM], 0, 1, 'float32', seed + 2001) as tf.Tensor2D;
  const rg = tf.randomNormal([classes, CDAN_RANDOM_DIM], 0, 1, 'float32', seed + 2002) as tf.Tensor2D;
  return {
    size: CDAN_RANDOM_DIM,
    apply: (f, g) => tf.mul(tf.div(tf.matMul(f, rf), Math.sqrt(CDAN_RANDOM_DIM)), tf.matMul(g, rg)),
    dispose: () => tf.dispose([rf, rg]),
  };
}

/** Row i of the result is the outer product g_i f_iᵀ flattened class by class: [n, classes · features]. */
export function multilinear(features: tf.Tensor2D, predictions: tf.Tensor2D): tf.Tensor2D {
  const [n, d] = features.shape;
  const c = predictions.shape[1];
  return tf.reshape(tf.mul(tf.reshape(predictions, [n, c, 1]), tf.reshape(features, [n, 1, d])), [n, c * d]);
}

/** CDAN's entropy weights 1 + e^{-H(g)}, each domain's (the first `sourceRows` rows, then the rest) normalised to sum to 1. */
export function entropyWeights(predictions: tf.Tensor2D, sourceRows: number): tf.Tensor1D {
  const w = tf.add(1, tf.exp(tf.neg(rowEntropy(predictions))));
  const source = tf.slice(w, [0], [sourceRows]);
  const target = tf.slice(w, [sourceRows], [-1]);
  return tf.concat([tf.div(source, tf.sum(source)), tf.div(target, tf.sum(target))]) as tf.Tensor1D;
}

/** Binary cross-entropy of the domain logits, the mean, or with `weights` sum(w · bce) / sum(w). */
export function weightedDomainLoss(domains: tf.Tensor2D, logits: tf.Tensor2D, weights: tf.Tensor1D | undefined): tf.Scalar {
  if (weights === undefined) return tf.losses.sigmoidCrossEntropy(domains, logits) as tf.Scalar;
  const perExample = tf.reshape(tf.losses.sigmoidCrossEntropy(domains, logits, undefined, undefined, tf.Reduction.NONE), [-1]);
  return tf.div(tf.sum(tf.mul(perExample, weights)), tf.sum(weights)) as tf.Scalar;
}
