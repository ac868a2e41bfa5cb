/** The maths of each method, pinned against hand computations. */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { JobSpec } from '../../../src/schemas/job.js';
import { selectBackend } from '../../../workers/training/backend.js';
import type { Dataset } from '../../../workers/training/data.js';
import { recomputeBatchNorm } from '../../../workers/training/methods/adabn.js';
import { coralLoss, covariance } from '../../../workers/training/methods/coral.js';
import { ganinLambda, gradientReversal } from '../../../workers/training/methods/dann.js';
import { l2sp } from '../../../workers/training/methods/l2sp.js';
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
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance * Math.max(1, Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
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
      close(grad.dataSync(), upstream.dataSync().map((g) => -lambda * g), 1e-7, `lambda ${lambda}`);
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
    assert.ok(Math.abs(coralLoss(source, shifted).dataSync()[0]!) < 1e-9);

    const s = [[1, 2], [3, 0], [-1, 1]];
    const t = [[0, 0], [2, 1], [1, -1], [0, 3]];
    const cov = (rows: number[][]) => {
      const n = rows.length;
      const mean = [0, 1].map((j) => rows.reduce((a, r) => a + r[j]!, 0) / n);
      return [0, 1].map((i) => [0, 1].map((j) => rows.reduce((a, r) => a + (r[i]! - mean[i]!) * (r[j]! - mean[j]!), 0) / (n - 1)));
    };
    const cs = cov(s);
    const ct = cov(t);
    assert.deepEqual(cs, [[4, -1], [-1, 1]]);
    let frobenius = 0;
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) frobenius += (cs[i]![j]! - ct[i]![j]!) ** 2;
    close(covariance(tf.tensor2d(s)).dataSync(), cs.flat(), 1e-6, 'covariance');
    close(coralLoss(tf.tensor2d(s), tf.tensor2d(t)).dataSync(), [frobenius / (4 * 2 * 2)], 1e-6, 'CORAL');
  });
});

test('MMD is 0 for identical samples, positive for shifted ones, and the multi-kernel formula by hand', () => {
  tf.tidy(() => {
    const source = tf.tensor2d(values(8 * 4, 5), [8, 4]);
    assert.ok(Math.abs(mmdLoss(source, tf.clone(source), 5, 2).dataSync()[0]!) < 1e-6);
    assert.ok(mmdLoss(source, tf.add(source, 0.5) as tf.Tensor2D, 5, 2).dataSync()[0]! > 0.01);

    const s = [[0], [1]];
    const t = [[3]];
    const points = [...s, ...t].map((p) => p[0]!);
    const d2 = points.map((a) => points.map((b) => (a - b) ** 2));
    const centre = d2.flat().reduce((a, b) => a + b, 0) / (3 * 3 - 3);
    const k = (a: number, b: number) => [0.5, 1, 2].reduce((sum, m) => sum + Math.exp(-d2[a]![b]! / (centre * m)), 0);
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
  tf.tidy(() => model.trainableWeights.forEach((w, i) => w.write(tf.add(w.read(), tf.tensor(values(w.shape.reduce((a, b) => a! * b!, 1)!, seed + i), w.shape as number[])))));
}

/** The gradient of the method's term alone with respect to every trainable weight. */
function termGradients(method: Method, model: tf.LayersModel): { value: number; grads: Float32Array[] } {
  return tf.tidy(() => {
    const step = {} as StepContext;
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => method.terms!(step).loss, variables);
    return { value: value.dataSync()[0]!, grads: variables.map((v) => grads[v.name]!.dataSync() as Float32Array) };
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
    const expected = Array.from(now, (v, j) => (fresh ? 0.05 * v : 0.3 * (v - w0[i]![j]!)));
    close(grads[i]!, expected, 1e-5, w.originalName);
    expectedValue += now.reduce((a, v, j) => a + (fresh ? 0.05 * v * v : 0.3 * (v - w0[i]![j]!) ** 2) / 2, 0);
  });
  close([value], [expectedValue], 1e-5, 'penalty');
  method.dispose();
  model.dispose();
});

test('the multi_source gradient is 1/lambda sum_d (w - w0_d), and its value the seed\'s sum over the bases', () => {
  const bases = [2, 3, 4].map((seed) => setting(seed).model);
  const maps = bases.map((b) => Object.fromEntries(b.weights.map((w) => [w.originalName, w.read()])));
  const { model, feature } = setting(5);
  const method = multiSource({ model, feature, spec: spec({ type: 'domain_adaptation', method: { kind: 'multi_source', lambda: 4 } }), newLayers: new Set(), bases: maps, seed: 1 });
  const { value, grads } = termGradients(method, model);
  let expectedValue = 0;
  model.trainableWeights.forEach((w, i) => {
    const now = Array.from(w.read().dataSync());
    const anchors = maps.map((m) => m[w.originalName]!.dataSync());
    close(grads[i]!, Array.from(now, (v, j) => anchors.reduce((a, w0) => a + (v - w0[j]!), 0) / 4), 1e-5, w.originalName);
    expectedValue += anchors.reduce((a, w0) => a + now.reduce((s, v, j) => s + (v - w0[j]!) ** 2, 0) / 2, 0) / 4;
  });
  close([value], [expectedValue], 1e-5, 'penalty');
  method.dispose();
  [...bases, model].forEach((m) => m.dispose());
});

test('pseudo-labels: cross-entropy against confident predictions only, averaged over the batch', () => {
  tf.tidy(() => {
    const logits = tf.tensor2d([[4, 0], [0.1, 0], [0, 5]]);
    const { loss, rate } = pseudoLabelLoss(logits, 0.9);
    const ce = (row: number[], label: number) => Math.log(row.reduce((a, v) => a + Math.exp(v), 0)) - row[label]!;
    close(rate.dataSync(), [2 / 3], 1e-6, 'rate');
    close(loss.dataSync(), [(ce([4, 0], 0) + ce([0, 5], 1)) / 3], 1e-6, 'loss');
    const grad = tf.grad((l: tf.Tensor) => pseudoLabelLoss(l as tf.Tensor2D, 0.9).loss)(logits).arraySync() as number[][];
    assert.deepEqual(grad[1], [0, 0], 'an unconfident example adds nothing');
  });
});

test('AdaBN sets each batch-norm layer to the statistics of its input over the target set', async () => {
  const model = buildMlp({ kind: 'mlp', hidden: [5], batchNorm: true }, [3], 2, 1);
  const n = 1234;
  const features = Float32Array.from(values(n * 3, 7), (v, i) => v * (1 + (i % 3)) + (i % 3));
  const data: Dataset = {
    files: { id: 't', dir: '', numExamples: n, featureShape: [3], featureDtype: 'float32', numClasses: 2, classes: ['a', 'b'], preprocessing: { scale: 1, offset: 0 } },
    features,
    labels: new Int32Array(n),
    featureSize: 3,
  };
  const bn = model.getLayer('dense_1_bn');
  await recomputeBatchNorm(model, [bn], data);
  const hidden = tf.tidy(() => (model.getLayer('dense_1').apply(tf.tensor2d(features, [n, 3])) as tf.Tensor).arraySync() as number[][]);
  const mean = [0, 1, 2, 3, 4].map((c) => hidden.reduce((a, r) => a + r[c]!, 0) / n);
  const variance = mean.map((m, c) => hidden.reduce((a, r) => a + (r[c]! - m) ** 2, 0) / n);
  const stat = (suffix: string) => bn.weights.find((w) => w.originalName.endsWith(suffix))!.read().dataSync();
  close(stat('moving_mean'), mean, 1e-5, 'moving mean');
  close(stat('moving_variance'), variance, 1e-4, 'moving variance');
  model.dispose();
});
