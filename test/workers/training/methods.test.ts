/** The maths of each method, pinned against hand computations. */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import type { JobSpec } from '../../../src/schemas/job.js';
import { selectBackend } from '../../../workers/training/backend.js';
import type { Dataset } from '../../../workers/training/data.js';
import { recomputeBatchNorm } from '../../../workers/training/methods/adabn.js';
import { CDAN_RANDOM_DIM, conditioningMap, entropyWeights, multilinear, weightedDomainLoss } from '../../../workers/training/methods/cdan.js';
import { coralLoss, covariance } from '../../../workers/training/methods/coral.js';
import { ganinLambda, gradientReversal } from '../../../workers/training/methods/dann.js';
import { l2sp } from '../../../workers/training/methods/l2sp.js';
import { mccLoss } from '../../../workers/training/methods/mcc.js';
import type { Method, MethodContext, StepContext } from '../../../workers/training/methods/method.js';
import { mmdLoss } from '../../../workers/training/methods/mmd.js';
import { multiSource } from '../../../workers/training/methods/multi-source.js';
import { pseudoLabelLoss } from '../../../workers/training/methods/pseudo-label.js';
import { buildMlp } from '../../../workers/training/models.js';
import { featureLayerOf } from '../../../workers/training/network.js';

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
});

/** Deterministic values in (-1, 1), different for each seed. */
const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 7919 + i * 104729));

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test('gradient reversal is the identity forward and scales the gradient by -lambda backward', () => {
  const start = tf.memory().numTensors;
  tf.tidy(() => {
    const x = tf.tensor2d(values(6, 1), [2, 3]);
    const upstream = tf.tensor2d(values(6, 2), [2, 3]);
    for (const lambda of [0, 0.3, 1, 2.5]) {
      assert.deepEqual(gradientReversal(x, lambda).dataSync(), x.dataSync());
      const grad = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(gradientReversal(input, lambda), upstream)))(x);
      close(
        grad.dataSync(),
        upstream.dataSync().map((g) => -lambda * g),
        1e-7,
        `lambda ${lambda}`,
      );
    }
  });
  assert.equal(tf.memory().numTensors, start);
  assert.equal(ganinLambda(0, 10), 0);
  assert.ok(Math.abs(ganinLambda(1, 10) - (2 / (1 + Math.exp(-10)) - 1)) < 1e-12);
  assert.ok(ganinLambda(0.1, 10) < ganinLambda(0.5, 10) && ganinLambda(0.5, 10) < ganinLambda(1, 10) && ganinLambda(1, 10) < 1);
});

test('the CORAL loss is 0 for equal covariances and ||C_s - C_t||^2 / 4d^2 by hand otherwise', () => {
  tf.tidy(() => {
    const source = tf.tensor2d(values(5 * 3, 3), [5, 3]);
    // A shift and a reordering of the rows change nothing in the covariance.
    const shifted = tf.add(tf.gather(source, [4, 2, 0, 3, 1]), tf.tensor1d([5, -2, 0.5])) as tf.Tensor2D;
    assert.ok(Math.abs(coralLoss(source, shifted).dataSync()[0]) < 1e-9);

    const s = [
      [1, 2],
      [3, 0],
      [-1, 1],
    ];
    const t = [
      [0, 0],
      [2, 1],
      [1, -1],
      [0, 3],
    ];
    const cov = (rows: number[][]) => {
      const n = rows.length;
      const mean = [0, 1].map((j) => rows.reduce((a, r) => a + r[j], 0) / n);
      return [0, 1].map((i) => [0, 1].map((j) => rows.reduce((a, r) => a + (r[i] - mean[i]) * (r[j] - mean[j]), 0) / (n - 1)));
    };
    const cs = cov(s);
    const ct = cov(t);
    assert.deepEqual(cs, [
      [4, -1],
      [-1, 1],
    ]);
    let frobenius = 0;
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) frobenius += (cs[i][j] - ct[i][j]) ** 2;
    close(covariance(tf.tensor2d(s)).dataSync(), cs.flat(), 1e-6, 'covariance');
    close(coralLoss(tf.tensor2d(s), tf.tensor2d(t)).dataSync(), [frobenius / (4 * 2 * 2)], 1e-6, 'CORAL');
  });
});

test('MMD is 0 for identical samples, positive for shifted ones, and the multi-kernel formula by hand', () => {
  tf.tidy(() => {
    const source = tf.tensor2d(values(8 * 4, 5), [8, 4]);
    assert.ok(Math.abs(mmdLoss(source, tf.clone(source), 5, 2).dataSync()[0]) < 1e-6);
    assert.ok(mmdLoss(source, tf.add(source, 0.5) as tf.Tensor2D, 5, 2).dataSync()[0] > 0.01);

    const s = [[0], [1]];
    const t = [[3]];
    const points = [...s, ...t].map((p) => p[0]);
    const d2 = points.map((a) => points.map((b) => (a - b) ** 2));
    const centre = d2.flat().reduce((a, b) => a + b, 0) / (3 * 3 - 3);
    const k = (a: number, b: number) => [0.5, 1, 2].reduce((sum, m) => sum + Math.exp(-d2[a][b] / (centre * m)), 0);
    const expected = (k(0, 0) + k(0, 1) + k(1, 0) + k(1, 1)) / 4 + k(2, 2) - (2 * (k(0, 2) + k(1, 2))) / 2;
    close(mmdLoss(tf.tensor2d(s), tf.tensor2d(t), 3, 2).dataSync(), [expected], 1e-6, 'MMD');
  });
});

/** A small model whose weights have moved away from where the method was built. */
function setting(seed: number) {
  const model = buildMlp({ kind: 'mlp', hidden: [4] }, [3], 2, seed);
  const feature = featureLayerOf(model, undefined, '/method/featureLayer');
  return { model, feature };
}

function move(model: tf.LayersModel, seed: number): void {
  tf.tidy(() =>
    model.trainableWeights.forEach((w, i) =>
      w.write(
        tf.add(
          w.read(),
          tf.tensor(
            values(
              w.shape.reduce((a, b) => a! * b!, 1)!,
              seed + i,
            ),
            w.shape as number[],
          ),
        ),
      ),
    ),
  );
}

/** The gradient of the method's term alone with respect to every trainable weight. */
function termGradients(method: Method, model: tf.LayersModel): { value: number; grads: Float32Array[] } {
  return tf.tidy(() => {
    const step = {} as StepContext;
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => method.terms!(step).loss, variables);
    return { value: value.dataSync()[0], grads: variables.map((v) => grads[v.name].dataSync() as Float32Array) };
  });
}

const spec = (over: Partial<JobSpec>): JobSpec => ({ type: 'finetune', model: {}, data: {}, ...over });

test('the l2sp gradient is alpha (w - w0) on base weights and beta w on new layers', () => {
  const { model, feature } = setting(1);
  const w0 = model.trainableWeights.map((w) => w.read().dataSync().slice());
  const ctx: MethodContext = { model, feature, spec: spec({ strategy: { kind: 'l2sp', alpha: 0.3, beta: 0.05 } }), newLayers: new Set(['logits']), seed: 1 };
  const method = l2sp(ctx);
  move(model, 10);
  const { value, grads } = termGradients(method, model);
  let expectedValue = 0;
  model.trainableWeights.forEach((w, i) => {
    const now = Array.from(w.read().dataSync());
    const fresh = w.originalName.startsWith('logits/');
    const expected = Array.from(now, (v, j) => (fresh ? 0.05 * v : 0.3 * (v - w0[i][j])));
    close(grads[i], expected, 1e-5, w.originalName);
    expectedValue += now.reduce((a, v, j) => a + (fresh ? 0.05 * v * v : 0.3 * (v - w0[i][j]) ** 2) / 2, 0);
  });
  close([value], [expectedValue], 1e-5, 'penalty');
  method.dispose();
  model.dispose();
});

test("the multi_source gradient is 1/lambda sum_d (w - w0_d), and its value the seed's sum over the bases", () => {
  const bases = [2, 3, 4].map((seed) => setting(seed).model);
  const maps = bases.map((b) => Object.fromEntries(b.weights.map((w) => [w.originalName, w.read()])));
  const { model, feature } = setting(5);
  const method = multiSource({
    model,
    feature,
    spec: spec({ type: 'domain_adaptation', method: { kind: 'multi_source', lambda: 4 } }),
    newLayers: new Set(),
    bases: maps,
    seed: 1,
  });
  const { value, grads } = termGradients(method, model);
  let expectedValue = 0;
  model.trainableWeights.forEach((w, i) => {
    const now = Array.from(w.read().dataSync());
    const anchors = maps.map((m) => m[w.originalName].dataSync());
    close(
      grads[i],
      Array.from(now, (v, j) => anchors.reduce((a, w0) => a + (v - w0[j]), 0) / 4),
      1e-5,
      w.originalName,
    );
    expectedValue += anchors.reduce((a, w0) => a + now.reduce((s, v, j) => s + (v - w0[j]) ** 2, 0) / 2, 0) / 4;
  });
  close([value], [expectedValue], 1e-5, 'penalty');
  method.dispose();
  [...bases, model].forEach((m) => m.dispose());
});

test('pseudo-labels: cross-entropy against confident predictions only, averaged over the batch', () => {
  tf.tidy(() => {
    const logits = tf.tensor2d([
      [4, 0],
      [0.1, 0],
      [0, 5],
    ]);
    const { loss, rate } = pseudoLabelLoss(logits, 0.9);
    const ce = (row: number[], label: number) => Math.log(row.reduce((a, v) => a + Math.exp(v), 0)) - row[label];
    close(rate.dataSync(), [2 / 3], 1e-6, 'rate');
    close(loss.dataSync(), [(ce([4, 0], 0) + ce([0, 5], 1)) / 3], 1e-6, 'loss');
    const grad = tf
      .grad((l: tf.Tensor) => pseudoLabelLoss(l as tf.Tensor2D, 0.9).loss)(logits)
      .arraySync() as number[][];
    assert.deepEqual(grad[1], [0, 0], 'an unconfident example adds nothing');
  });
});

test('AdaBN sets each batch-norm layer to the statistics of its input over the target set', async () => {
  const model = buildMlp({ kind: 'mlp', hidden: [5], batchNorm: true }, [3], 2, 1);
  const n = 1234;
  const features = Float32Array.from(values(n * 3, 7), (v, i) => v * (1 + (i % 3)) + (i % 3));
  const data: Dataset = {
    files: {
      id: 't',
      dir: '',
      numExamples: n,
      featureShape: [3],
      featureDtype: 'float32',
      numClasses: 2,
      classes: ['a', 'b'],
      preprocessing: { scale: 1, offset: 0 },
    },
    features,
    labels: new Int32Array(n),
    featureSize: 3,
  };
  const bn = model.getLayer('dense_1_bn');
  await recomputeBatchNorm(model, [bn], data);
  const hidden = tf.tidy(() => (model.getLayer('dense_1').apply(tf.tensor2d(features, [n, 3])) as tf.Tensor).arraySync() as number[][]);
  const mean = [0, 1, 2, 3, 4].map((c) => hidden.reduce((a, r) => a + r[c], 0) / n);
  const variance = mean.map((m, c) => hidden.reduce((a, r) => a + (r[c] - m) ** 2, 0) / n);
  const stat = (suffix: string) =>
    bn.weights
      .find((w) => w.originalName.endsWith(suffix))!
      .read()
      .dataSync();
  close(stat('moving_mean'), mean, 1e-5, 'moving mean');
  close(stat('moving_variance'), variance, 1e-4, 'moving variance');
  model.dispose();
});

/*
 * CDAN and MCC against PyTorch running the authors' formulas (thuml's CDAN and
 * Versatile-Domain-Adaptation code, as pytorch-adapt ports them), on:
 *   logits z = [[2, 0.5, -1], [0.1, 0.2, 0.3], [-1, 3, 0], [1.5, 1.4, -0.5]] (rows 0-1 source, 2-3 target)
 *   features f = [[0.5, -1], [1, 2], [0, 0.3], [-0.7, 0.1]], a linear domain classifier k = [0.3, -0.2, 0.5, 0.1, -0.4, 0.25], bias 0.1
 */
const Z = [
  [2, 0.5, -1],
  [0.1, 0.2, 0.3],
  [-1, 3, 0],
  [1.5, 1.4, -0.5],
];
const F = [
  [0.5, -1],
  [1, 2],
  [0, 0.3],
  [-0.7, 0.1],
];

test("MCC: the class confusion and its gradient equal the authors' code at temperature 2.5", () => {
  tf.tidy(() => {
    const z = tf.tensor2d(Z);
    close(mccLoss(z, 2.5).dataSync(), [0.6210523247718811], 1e-5, 'MCC');
    const grad = tf.grad((logits: tf.Tensor) => mccLoss(logits as tf.Tensor2D, 2.5))(z);
    const expected = [
      -0.01325592678, 0.00884864386, 0.00440728385, 0.00421554316, 0.00653512403, -0.01075066812, 0.00851450395, -0.01352332067, 0.00500881672, -0.0039224769,
      0.00190339261, 0.00201908452,
    ];
    close(grad.dataSync(), expected, 1e-4, 'dMCC/dz');
    // One-hot, distinct predictions have no confusion at all.
    assert.ok(
      Math.abs(
        mccLoss(
          tf.tensor2d([
            [30, 0, 0],
            [0, 30, 0],
            [0, 0, 30],
          ]),
          1,
        ).dataSync()[0],
      ) < 1e-6,
    );
  });
});

test('MCC lowers the class confusion of a linear model on a toy target it has no labels for', () => {
  const start = tf.memory().numTensors;
  // Two target clusters a linear model first scores alike: confusion high.
  const x = tf.tensor2d([
    [1, 0.2],
    [0.9, 0.1],
    [1.1, 0.3],
    [0.2, 1],
    [0.1, 0.9],
    [0.3, 1.1],
  ]);
  const w = tf.tidy(() =>
    tf.variable(
      tf.tensor2d([
        [0.1, 0.12],
        [0.1, 0.08],
      ]),
    ),
  );
  const confusion = () => mccLoss(tf.matMul(x, w), 2.5);
  const before = tf.tidy(() => confusion().dataSync()[0]);
  // Plain gradient descent, by hand: the term alone moves the weights.
  for (let i = 0; i < 200; i++) tf.tidy(() => w.assign(tf.sub(w, tf.mul(tf.grad((v: tf.Tensor) => mccLoss(tf.matMul(x, v), 2.5))(w), 5))));
  const after = tf.tidy(() => confusion().dataSync()[0]);
  assert.ok(after < before / 2, `confusion ${before} -> ${after}`);
  tf.dispose([x, w]);
  assert.equal(tf.memory().numTensors, start);
});

test("CDAN: the multilinear map, the entropy weights, the weighted domain loss and its feature gradient equal the authors' code", () => {
  tf.tidy(() => {
    const g = tf.softmax(tf.tensor2d(Z)) as tf.Tensor2D;
    const f = tf.tensor2d(F);
    const h = multilinear(f, g);
    assert.deepEqual(h.shape, [4, 6]);
    close(
      h.dataSync(),
      [
        0.3927985, -0.785597, 0.0876452, -0.1752904, 0.0195563, -0.0391126, 0.3006096, 0.6012192, 0.332225, 0.66445, 0.3671654, 0.7343308, 0, 0.0051443, 0,
        0.2808719, 0, 0.0139838, -0.3431082, 0.0490155, -0.3104572, 0.044351, -0.0464347, 0.0066335,
      ],
      1e-5,
      'f ⊗ g',
    );
    const weights = entropyWeights(g, 2);
    close(weights.dataSync(), [0.5352858, 0.4647142, 0.5551075, 0.4448926], 1e-5, '1 + e^-H, per domain');
    const domains = tf.tensor2d([[0], [0], [1], [1]]);
    const kernel = tf.tensor2d([[0.3], [-0.2], [0.5], [0.1], [-0.4], [0.25]]);
    const loss = (features: tf.Tensor) =>
      weightedDomainLoss(domains, tf.add(tf.matMul(multilinear(features as tf.Tensor2D, g), kernel), 0.1) as tf.Tensor2D, weights);
    close(loss(f).dataSync(), [0.7910991907], 1e-5, 'CDAN+E domain loss');
    close(tf.grad(loss)(f).dataSync(), [0.0489769, -0.0206637, 0.0148492, 0.0088056, -0.0589781, -0.0132128, -0.0407909, 0.0044211], 1e-4, 'its gradient in f');
    // Without weights it is the plain mean binary cross-entropy.
    const logits = tf.tensor2d([[0.2], [-1], [0.5], [2]]);
    close(weightedDomainLoss(domains, logits, undefined).dataSync(), tf.losses.sigmoidCrossEntropy(domains, logits).dataSync(), 1e-7, 'unweighted');
  });
});

test('CDAN switches to the randomized multilinear map when f ⊗ g is large, seeded and scaled by 1/sqrt(d)', () => {
  const start = tf.memory().numTensors;
  const small = conditioningMap(2, 3, 1);
  assert.equal(small.size, 6);
  const large = conditioningMap(1000, 10, 1);
  assert.equal(large.size, CDAN_RANDOM_DIM);
  tf.tidy(() => {
    const f = tf.tensor2d(values(2 * 1000, 3), [2, 1000]);
    const g = tf.softmax(tf.tensor2d(values(20, 4), [2, 10])) as tf.Tensor2D;
    const h = large.apply(f, g);
    assert.deepEqual(h.shape, [2, CDAN_RANDOM_DIM]);
    const again = conditioningMap(1000, 10, 1);
    close(again.apply(f, g).dataSync(), h.dataSync(), 1e-6, 'same seed, same map');
    again.dispose();
    // E[(R_f f)_k (R_g g)_k] = f·0 ... the map's inner products estimate <f, f'><g, g'> (CDAN's Theorem): check the scale.
    const exact = tf.sum(tf.square(multilinear(f, g))).dataSync()[0];
    const estimate = tf.sum(tf.square(h)).dataSync()[0];
    assert.ok(estimate > exact / 3 && estimate < exact * 3, `||h||² ${estimate} vs ||f ⊗ g||² ${exact}`);
  });
  small.dispose();
  large.dispose();
  assert.equal(tf.memory().numTensors, start);
});
