/**
 * The label-free validators: each formula against values computed with pytorch-adapt's own code
 * (PyTorch and NumPy, constants below), and the domain classifier of dev on a shift it must see.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { improves, MONITORS, SND_BLOCK_ROWS, SND_VALUES_PER_BLOCK_CELL, VALIDATORS } from '../../../src/jobs/validators.js';
import { selectBackend } from '../../../workers/training/backend.js';
import {
  devRisk,
  domainClassifiers,
  informationMaximisation,
  meanEntropy,
  mixedPairs,
  sample,
  softNeighbourhoodDensity,
} from '../../../workers/training/validators.js';
import type { Dataset } from '../../../workers/training/data.js';

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
});

/*
 * The reference values, from pytorch-adapt 0.0.83's EntropyValidator, DiversityValidator (IM is
 * their sum), SNDValidator (layer "preds", T 0.05) and get_dev_risk (normalization None), on:
 *   logits = [[2, 0.5, -1], [0.1, 0.2, 0.3], [-1, 3, 0], [1.5, 1.4, -0.5]]
 *   w = [0.5, 1.5, 2, 0.2, 0.8], error = [0.3, 1.2, 0.7, 2, 0.1]
 * (pytorch-adapt reports the negated entropy and dev as "higher is better" scores).
 */
const LOGITS = [
  [2, 0.5, -1],
  [0.1, 0.2, 0.3],
  [-1, 3, 0],
  [1.5, 1.4, -0.5],
];
const REFERENCE = { entropy: 0.7203102707862854, im: 0.26577794551849365, snd: 0.3701176047325134, dev: 0.766 };

test("snd in blocks of SND_BLOCK_ROWS rows: the whole matrix's value, with some eleven block x sample arrays at its peak, not nine sample² ones", async () => {
  const start = tf.memory().numTensors;
  for (const n of [SND_BLOCK_ROWS, 2 * SND_BLOCK_ROWS + 37]) {
    tf.tidy(() => {
      const p = tf.softmax(tf.mul(tf.randomNormal([n, 10], 0, 1, 'float32', n), 3)) as tf.Tensor2D;
      // the definition at once, as pytorch-adapt computes it
      const unit = tf.div(p, tf.norm(p, 'euclidean', 1, true));
      const masked = tf.sub(tf.matMul(unit, tf.transpose(unit)), tf.mul(tf.eye(n), 1e4));
      const whole = meanEntropy(tf.softmax(tf.div(masked, 0.05)) as tf.Tensor2D).dataSync()[0];
      const blocks = softNeighbourhoodDensity(p).dataSync()[0];
      assert.ok(Math.abs(blocks - whole) < 1e-6 * whole, `${n} rows: ${blocks} in blocks, ${whole} at once`);
    });
  }
  const n = 1500;
  const p = tf.tidy(() => tf.softmax(tf.randomNormal([n, 10], 0, 1, 'float32', 1)) as tf.Tensor2D);
  const profile = await tf.profile(() => void tf.dispose(softNeighbourhoodDensity(p)));
  p.dispose();
  // (all at once: nine 1500 x 1500 arrays, 81 MB)
  const blockArrays = SND_VALUES_PER_BLOCK_CELL * SND_BLOCK_ROWS * n * 4;
  assert.ok(
    profile.peakBytes - n * 10 * 4 <= blockArrays,
    `peak ${profile.peakBytes} bytes over the input, expected at most ${SND_VALUES_PER_BLOCK_CELL} ${SND_BLOCK_ROWS} x ${n} arrays (${blockArrays})`,
  );
  assert.equal(tf.memory().numTensors, start);
});

test("entropy, im and snd equal pytorch-adapt's on the same predictions", () => {
  const start = tf.memory().numTensors;
  tf.tidy(() => {
    const p = tf.softmax(tf.tensor2d(LOGITS)) as tf.Tensor2D;
    assert.ok(Math.abs(meanEntropy(p).dataSync()[0] - REFERENCE.entropy) < 1e-5);
    assert.ok(Math.abs(informationMaximisation(p).dataSync()[0] - REFERENCE.im) < 1e-5);
    assert.ok(Math.abs(softNeighbourhoodDensity(p).dataSync()[0] - REFERENCE.snd) < 1e-4);
    // The extremes: one-hot predictions have no entropy, uniform ones log C.
    assert.ok(
      Math.abs(
        meanEntropy(
          tf.tensor2d([
            [1, 0, 0],
            [0, 1, 0],
          ]),
        ).dataSync()[0],
      ) < 1e-6,
    );
    assert.ok(Math.abs(meanEntropy(tf.fill([3, 4], 0.25) as tf.Tensor2D).dataSync()[0] - Math.log(4)) < 1e-5);
    // Confident and diverse beats confident and collapsed onto one class.
    const diverse = informationMaximisation(
      tf.tensor2d([
        [0.98, 0.01, 0.01],
        [0.01, 0.98, 0.01],
        [0.01, 0.01, 0.98],
      ]),
    ).dataSync()[0];
    const collapsed = informationMaximisation(
      tf.tensor2d([
        [0.98, 0.01, 0.01],
        [0.98, 0.01, 0.01],
        [0.98, 0.01, 0.01],
      ]),
    ).dataSync()[0];
    assert.ok(diverse > collapsed + 0.5, `${diverse} vs ${collapsed}`);
  });
  assert.equal(tf.memory().numTensors, start);
});

/*
 * MixVal's inter-cluster score by the authors' val_mixval_inter.py (its ice_inter lines, PyTorch
 * 1.13, lam 0.55) for the linear model x·W on these seven rows: predicted classes 0 1 2 0 0 1 2,
 * mirrored 2 1 0 0 2 1 0, so rows 0, 2, 4 and 6 pair different classes; mixed, those rows are
 * predicted 0, 2, 2 and 0, keeping the dominant row's class in two of the four: 0.5.
 */
const MIX_X = [
  [1.0, 0.2, -0.5, 0.3],
  [0.1, 1.2, 0.4, -0.2],
  [-0.3, 0.2, 1.5, 0.1],
  [0.9, 0.8, -0.1, 0.0],
  [0.2, -0.4, 0.3, 1.1],
  [-0.6, 1.0, 0.9, 0.2],
  [0.5, 0.1, 0.2, -0.9],
];
const MIX_W = [
  [1.0, -0.5, 0.2],
  [0.1, 1.0, -0.3],
  [-0.4, 0.3, 1.2],
  [0.6, 0.6, -0.6],
];

test("mixval's pairs equal the authors' code's on the same model and rows", () => {
  const start = tf.memory().numTensors;
  tf.tidy(() => {
    const w = tf.tensor2d(MIX_W);
    const predict = (x: tf.Tensor): tf.Tensor2D => tf.matMul(x, w);
    const x = tf.tensor2d(MIX_X);
    const { pairs, agreeing } = mixedPairs(predict, x, predict(x));
    assert.deepEqual([pairs.dataSync()[0], agreeing.dataSync()[0]], [4, 2]);
    // A model that answers one class has no pair to probe.
    const one = mixedPairs(predict, x, tf.tensor2d(MIX_X.map(() => [1, 0, 0])));
    assert.equal(one.pairs.dataSync()[0], 0);
  });
  assert.equal(tf.memory().numTensors, start);
});

test("dev equals pytorch-adapt's get_dev_risk, and is the mean loss when the weights are all equal", () => {
  const risk = devRisk([0.5, 1.5, 2, 0.2, 0.8], [0.3, 1.2, 0.7, 2, 0.1]);
  assert.ok(Math.abs(risk - REFERENCE.dev) < 1e-12, `${risk}`);
  assert.ok(Math.abs(devRisk([1, 1, 1], [0.5, 1, 3]) - 1.5) < 1e-12);
});

test('the domain classifier weights validation rows like the target up and rows like the source down', () => {
  const start = tf.memory().numTensors;
  const rows = (n: number, centre: number, seed: number) => tf.tidy(() => tf.add(tf.randomNormal([n, 6], 0, 1, 'float32', seed), centre) as tf.Tensor2D);
  const [source, target, validation] = [rows(200, 0, 1), rows(200, 2, 2), tf.tidy(() => tf.concat([rows(20, 0, 3), rows(20, 2, 4)]) as tf.Tensor2D)];
  const { weights, domainAccuracy, linearDomainAccuracy } = domainClassifiers(source, target, validation, 7);
  tf.dispose([source, target, validation]);
  assert.equal(tf.memory().numTensors, start, 'every tensor and variable of the classifiers is freed');
  assert.ok(domainAccuracy > 0.9, `held-out domain accuracy ${domainAccuracy}`);
  // domains a hyperplane separates: the linear probe tells them apart too
  assert.ok(linearDomainAccuracy > 0.9, `cross-validated linear domain accuracy ${linearDomainAccuracy}`);
  const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0) / a.length;
  const sourceLike = mean(weights.subarray(0, 20));
  const targetLike = mean(weights.subarray(20));
  assert.ok(sourceLike < 0.5 && targetLike > 2, `weights ${sourceLike} (source-like) vs ${targetLike} (target-like)`);
});

test("errorBound's linear probe does not see a difference only a nonlinear classifier can: the same mean, a wider spread", () => {
  // source N(0, 1), target N(0, 3²) in 6 dimensions: no hyperplane tells them apart, a distance from the origin does
  const rows = (n: number, sd: number, seed: number) => tf.randomNormal([n, 6], 0, sd, 'float32', seed) as tf.Tensor2D;
  const [source, target, validation] = [rows(400, 1, 11), rows(400, 3, 12), rows(10, 1, 13)];
  const { domainAccuracy, linearDomainAccuracy } = domainClassifiers(source, target, validation, 7);
  tf.dispose([source, target, validation]);
  assert.ok(domainAccuracy > 0.85, `one hidden layer: ${domainAccuracy}`);
  assert.ok(linearDomainAccuracy < 0.65, `linear: ${linearDomainAccuracy}`);
});

test('the linear probe is cross-validated: its accuracy counts every row once, each by a classifier that did not train on it', () => {
  // 151 + 151 rows in five folds of 60 or 61: one fold's accuracy is k/60 or k/61, a multiple of
  // 1/302 only at 0, 1/2 or 1; a count over all 302 rows is always one.
  const rows = (centre: number, seed: number) => tf.tidy(() => tf.add(tf.randomNormal([151, 6], 0, 1, 'float32', seed), centre) as tf.Tensor2D);
  const [source, target, validation] = [rows(0, 21), rows(0.6, 22), rows(0, 23)];
  const { linearDomainAccuracy } = domainClassifiers(source, target, validation, 7);
  tf.dispose([source, target, validation]);
  const correct = linearDomainAccuracy * 302;
  assert.ok(Math.abs(correct - Math.round(correct)) < 1e-9, `accuracy ${linearDomainAccuracy} is ${correct} of 302 rows`);
  assert.ok(linearDomainAccuracy > 0.6 && linearDomainAccuracy < 1, `a shift of 0.6 in each of 6 dimensions: ${linearDomainAccuracy}`);
});

test("the linear probe's accuracy is balanced across the domains: 50 source rows against 500 of the same distribution are at chance, not at the 91% of always answering target", () => {
  // the few-label case of docs/benchmarks.md: 10 labelled examples per class against a sample of 500 unlabelled ones
  const rows = (n: number, seed: number) => tf.randomNormal([n, 6], 0, 1, 'float32', seed) as tf.Tensor2D;
  const [source, target, validation] = [rows(50, 31), rows(500, 32), rows(10, 33)];
  const { linearDomainAccuracy } = domainClassifiers(source, target, validation, 7);
  tf.dispose([source, target, validation]);
  assert.ok(linearDomainAccuracy < 0.65, `no difference to find: ${linearDomainAccuracy}`);
});

test('a sample is fixed by its seed, at most the size asked, the whole set when smaller', () => {
  const n = 50;
  const data: Dataset = {
    files: {
      id: 'd',
      dir: '',
      numExamples: n,
      featureShape: [2],
      featureDtype: 'uint8',
      numClasses: 2,
      classes: ['a', 'b'],
      preprocessing: { scale: 1, offset: 0 },
    },
    features: Uint8Array.from({ length: 2 * n }, (_, i) => Math.floor(i / 2)),
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
    featureSize: 2,
  };
  const a = sample(data, 10, 3);
  assert.equal(a.labels.length, 10);
  assert.deepEqual(sample(data, 10, 3).features, a.features);
  assert.notDeepEqual(sample(data, 10, 4).features, a.features);
  // Each sampled row is one of the set's, label with it.
  const features = a.features as Float32Array;
  for (let i = 0; i < 10; i++) assert.equal(a.labels[i], features[2 * i] % 2);
  assert.equal(sample(data, 100, 3), data);
});

test('every validator is an earlyStopping monitor, with the goal that says which way is better', () => {
  for (const name of Object.keys(VALIDATORS)) assert.ok(name in MONITORS);
  assert.equal(MONITORS.valLoss.goal, 'minimize');
  assert.equal(VALIDATORS.entropy.goal, 'minimize');
  assert.equal(VALIDATORS.dev.goal, 'minimize');
  assert.equal(VALIDATORS.errorBound.goal, 'minimize');
  for (const name of ['im', 'snd', 'valAccuracy'] as const) assert.equal(VALIDATORS[name].goal, 'maximize');
  assert.ok(improves('minimize', 0.5, 0.7, 0.1) && !improves('minimize', 0.65, 0.7, 0.1));
  assert.ok(improves('maximize', 0.9, 0.7, 0.1) && !improves('maximize', 0.75, 0.7, 0.1));
});
