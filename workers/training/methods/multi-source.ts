import tf = require('@tensorflow/tfjs');
import { METHOD_DEFAULTS } from '../../../src/schemas/params.js';
import { TrainingError } from '../../../src/jobs/task.js';
import { checkCompatible, loadModel, type LoadedModel } from '../models.js';
import { plainMethod, type MethodFactory, type StartModel } from './method.js';

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

/**
 * The model multi_source starts from: every base (one architecture) loaded, and the first given
 * their mean, every weight averaged, batch-norm statistics included; the bases' weights go to the method.
 */
export const meanOfBases: StartModel = async (task, train) => {
  const dirs = task.baseModelDirs ?? [];
  if (dirs.length === 0) throw new TrainingError('invalid_spec', 'the task has no base models (baseModelDirs)', { param: '/model/bases' });
  const models: LoadedModel[] = [];
  try {
    for (const [i, dir] of dirs.entries()) {
      models.push(await loadModel(dir, { param: `/model/bases/${i}` }));
      checkCompatible(models[i].model, train, `/model/bases/${i}`);
    }
    const describe = (m: tf.LayersModel) => m.weights.map((w) => `${w.originalName} [${w.shape.join(', ')}]`).join(', ');
    const first = models[0].model;
    for (const [i, { model }] of models.entries()) {
      if (describe(model) !== describe(first)) {
        throw new TrainingError(
          'incompatible_model',
          `model.bases[${i}] has the weights ${describe(model)}; expected those of model.bases[0]: ${describe(first)} (multi_source averages models of one architecture)`,
          { param: `/model/bases/${i}` },
        );
      }
    }
    const bases = models.map(({ model }) => Object.fromEntries(model.weights.map((w) => [w.originalName, tf.clone(w.read())])));
    tf.tidy(() => first.weights.forEach((w) => w.write(tf.div(tf.addN(bases.map((b) => b[w.originalName])), bases.length))));
    models.slice(1).forEach(({ model }) => model.dispose());
    const notes = [...new Set(models.flatMap((m) => m.notes))];
    notes.push(`starting from the mean of the ${dirs.length} base models`);
    return { loaded: { model: first, notes, newLayers: [] }, bases };
  } catch (err) {
    models.forEach(({ model }) => model.dispose());
    throw err;
  }
};
