/**
 * The dense step (dense-step.ts) against the general step (train-step.ts with network.ts's dense
 * layers) on wasm: from the same seeded model and batches, every weight, loss sum and correct
 * count the same, bit for bit, over steps that include a short last batch, for each optimizer.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import type { Architecture, Optimizer } from '../../../src/schemas/job.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { Batcher, loadDataset, type Dataset } from '../../../workers/training/data.js';
import { denseStep } from '../../../workers/training/dense-step.js';
import { plainMethod, type Method } from '../../../workers/training/methods/method.js';
import { buildModel } from '../../../workers/training/models.js';
import { featureLayerOf, trainingForward } from '../../../workers/training/network.js';
import { createOptimizer, disposeOptimizer } from '../../../workers/training/optimizers.js';
import { trainStep, type StepSetup } from '../../../workers/training/train-step.js';
import { mnistDataset, tempDir } from './fixtures.js';

const SEED = 7;
let mnist: Dataset;

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
  // 700 examples: batches of 64 leave a last one of 60
  mnist = await loadDataset(await mnistDataset(await tempDir(), 'train', 'train', 0, 700), '/data/train');
});

interface Run {
  weights: Float32Array[];
  /** the optimizer's slots by name, in order: what a checkpoint stores, whichever step wrote it */
  slots: string[];
  loss: number;
  correct: number;
  /** whether the dense step ran */
  dense: boolean;
}

/** `steps` steps of `architecture` with `optimizer`, by the dense step when `dense`, else the general one. */
async function train(architecture: Architecture, optimizer: Optimizer, steps: number, dense: boolean): Promise<Run> {
  const start = tf.memory().numTensors;
  const model = buildModel(architecture, [784], 10, SEED);
  const method = plainMethod('full', model);
  const opt = createOptimizer(optimizer);
  const step = dense ? denseStep(model, method, { featureShape: [784], batchSize: 64 }) : undefined;
  const setup: StepSetup = {
    forward: trainingForward(model, method.variables, featureLayerOf(model, undefined, '/method/featureLayer'), true),
    method,
    optimizer: opt,
    sums: { loss: 0, correct: 0, signals: {} },
    numClasses: 10,
    targetLabelled: false,
    dense: step,
  };
  const batcher = new Batcher(mnist, 64, { seed: SEED });
  try {
    for (let i = 0; i < steps; i++) {
      if (i % batcher.steps === 0) batcher.shuffle(1 + i / batcher.steps);
      trainStep(setup, batcher.fill(i % batcher.steps), undefined, 0);
    }
    const named = await opt.getWeights();
    // by the index of the variable each belongs to: variable names differ from model to model
    const slots = named.map((w) => {
      const owner = method.variables.findIndex((v) => w.name.startsWith(`${v.name}/`));
      return owner < 0 ? w.name : `variable ${owner}${w.name.slice(method.variables[owner].name.length)}`;
    });
    // a new iterations scalar and the slots themselves, which the optimizer's disposal ends anyway
    tf.dispose(named.map((w) => w.tensor));
    return {
      weights: model.getWeights().map((w) => w.dataSync() as Float32Array),
      slots,
      loss: setup.sums.loss,
      correct: setup.sums.correct,
      dense: step !== undefined,
    };
  } finally {
    step?.dispose();
    disposeOptimizer(opt);
    model.dispose();
    assert.equal(tf.memory().numTensors, start, 'every tensor of the run was disposed');
  }
}

const CASES: { name: string; architecture: Architecture }[] = [
  { name: 'the seed MLP (784-128-10, linear)', architecture: { kind: 'mlp', hidden: [128], activation: 'linear' } },
  { name: 'relu layers of sizes that fill no vector (784-37-13-10)', architecture: { kind: 'mlp', hidden: [37, 13], activation: 'relu' } },
];
const OPTIMIZERS: Optimizer[] = [
  { name: 'sgd', learningRate: 0.05 },
  { name: 'sgd', learningRate: 0.01, momentum: 0.9 },
  { name: 'sgd', learningRate: 0.01, momentum: 0.9, nesterov: true },
  { name: 'adam', learningRate: 0.001 },
];

for (const { name, architecture } of CASES) {
  test(`${name}: the dense step trains to the general step's weights, losses and counts, bit for bit, with every optimizer`, async () => {
    const initial = (await train(architecture, OPTIMIZERS[0], 0, false)).weights;
    for (const optimizer of OPTIMIZERS) {
      // 24 steps: two passes over 11 batches, each pass ending with the short one
      const general = await train(architecture, optimizer, 24, false);
      const dense = await train(architecture, optimizer, 24, true);
      assert.ok(dense.dense, 'the dense step took the model');
      const what = JSON.stringify(optimizer);
      assert.equal(dense.loss, general.loss, `${what}: loss sum`);
      assert.equal(dense.correct, general.correct, `${what}: correct count`);
      assert.deepEqual(dense.slots, general.slots, `${what}: the optimizer's slots`);
      dense.weights.forEach((w, i) => assert.deepEqual(w, general.weights[i], `${what}: weight ${i}`));
      assert.ok(
        dense.weights.every((w, i) => w.some((v, k) => v !== initial[i][k])),
        `${what}: the steps changed every weight tensor`,
      );
    }
  });
}

test('the dense step declines what it does not compute: other layers and activations, frozen weights, method terms, other backends', async () => {
  const takes = (model: tf.LayersModel, method: Method = plainMethod('full', model), featureShape = [784]) => {
    const step = denseStep(model, method, { featureShape, batchSize: 64 });
    step?.dispose();
    model.dispose();
    return step !== undefined;
  };
  assert.ok(takes(buildModel({ kind: 'mlp', hidden: [16], activation: 'relu' }, [784], 10, SEED)));
  assert.equal(takes(buildModel({ kind: 'mlp', hidden: [16], activation: 'tanh' }, [784], 10, SEED)), false, 'tanh');
  assert.equal(takes(buildModel({ kind: 'mlp', hidden: [16], activation: 'relu', batchNorm: true }, [784], 10, SEED)), false, 'batch norm');
  assert.equal(
    takes(buildModel({ kind: 'mlp', hidden: [16], activation: 'relu' }, [28, 28, 1], 10, SEED), undefined, [28, 28, 1]),
    false,
    'images (a flatten layer)',
  );
  const noBias = tf.sequential({ layers: [tf.layers.dense({ inputShape: [784], units: 10, useBias: false })] });
  assert.equal(takes(noBias), false, 'no bias');
  const frozen = buildModel({ kind: 'mlp', hidden: [16], activation: 'relu' }, [784], 10, SEED);
  assert.equal(takes(frozen, { ...plainMethod('full', frozen), variables: [frozen.layers[1].weights[0].read() as tf.Variable] }), false, 'frozen weights');
  const withTerms = buildModel({ kind: 'mlp', hidden: [16], activation: 'relu' }, [784], 10, SEED);
  assert.equal(takes(withTerms, { ...plainMethod('full', withTerms), terms: () => ({ loss: tf.scalar(0), signals: {} }) }), false, 'method terms');
  await tf.setBackend('cpu');
  try {
    assert.equal(takes(buildModel({ kind: 'mlp', hidden: [16], activation: 'relu' }, [784], 10, SEED)), false, 'the cpu backend');
  } finally {
    await tf.setBackend('wasm');
  }
});
