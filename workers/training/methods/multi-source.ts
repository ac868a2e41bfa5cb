import * as tf from '@tensorflow/tfjs';
import { METHOD_DEFAULTS } from '../../../src/schemas/methods.js';
import { TrainingError } from '../../../src/jobs/task.js';
import { plainMethod, type MethodFactory } from './method.js';

/**
 * The seed's multi-source objective, sum_d 1/2 ||w - w0_d||^2 + lambda/n sum_i L(y_i, f_w(x_i))
 * over base models d = 1..D trained on other domains, starting from their mean (the training loop
 * loads it), which minimises the first term. Divided by lambda, so that the learning rate means
 * what it means for every other method: each step minimises
 * mean L + 1/lambda sum_d 1/2 ||w - w0_d||^2. The sum is computed as
 * D/2 ||w - mean||^2 + sum_d 1/2 ||w0_d - mean||^2 (equal, by expanding the squares), one pass
 * over the weights instead of D.
 */
export const multiSource: MethodFactory = ({ model, spec, bases }) => {
  if (bases === undefined || bases.length === 0) {
    throw new TrainingError('invalid_spec', 'method multi_source needs the weights of model.bases, and the task has none', { param: '/model/bases' });
  }
  const lambda = spec.method?.lambda ?? METHOD_DEFAULTS.lambda;
  const count = bases.length;
  const anchored = model.trainableWeights.map((w) => ({
    variable: w.read() as tf.Variable,
    mean: tf.tidy(() => tf.div(tf.addN(bases.map((b) => b[w.originalName])), count)),
  }));
  // The spread of the bases around their mean: the part of the penalty no weight can change.
  const spread = tf.tidy(() =>
    tf.addN(anchored.flatMap(({ mean }, i) => bases.map((b) => tf.sum(tf.square(tf.sub(b[model.trainableWeights[i].originalName], mean)))))).mul(0.5),
  ) as tf.Scalar;
  return {
    ...plainMethod('multi_source', model),
    signals: ['penalty'],
    terms: () => {
      const distance = tf.addN(anchored.map(({ variable, mean }) => tf.sum(tf.square(tf.sub(variable, mean)))));
      const penalty = tf.div(tf.add(tf.mul(distance, count / 2), spread), lambda) as tf.Scalar;
      return { loss: penalty, signals: { penalty } };
    },
    dispose: () => {
      anchored.forEach((a) => a.mean.dispose());
      spread.dispose();
    },
  };
};
