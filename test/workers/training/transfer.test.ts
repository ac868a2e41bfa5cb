/**
 * Transfer learning on deep bases, end to end through runTraining: a new head on a named feature
 * layer of a functional conv base (residual add, batch norm), freezing from a named layer of the
 * service's CNN, and the feature cache (built, reused, refused, equal to the uncached run, and
 * resumable bit for bit).
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import type { Hyperparameters, JobSpec } from '../../../src/schemas/job.js';
import type { DatasetFiles, TrainingMessage, TrainingResult, TrainingTask } from '../../../src/jobs/task.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { evaluate } from '../../../workers/training/evaluate.js';
import { loadModel, saveModel } from '../../../workers/training/models.js';
import { runTraining } from '../../../workers/training/training-loop.js';
import { makeTask, mnistDataset, mnistDigits, recorder, tempDir, trainSpec } from './fixtures.js';

let root: string;
let featuresRoot: string;
let upper: DatasetFiles;
let upperTest: DatasetFiles;
/** a functional conv base with batch norm and a residual add, its statistics set away from (0, 1) */
let convBase: string;
/** the same with a dropout before its feature layer */
let dropoutBase: string;
/** the service's own CNN with batch norm, trained for an epoch */
let cnnBase: string;
let baseline: number;

/** input [784] → 28x28x1 → conv, bn, relu → conv, bn, + → relu → global average pool ('features') → [dropout, dense 'hidden'] → logits (10) */
function functionalBase(dropout: boolean): tf.LayersModel {
  const input = tf.input({ shape: [784], name: 'pixels' });
  const image = tf.layers.reshape({ targetShape: [28, 28, 1], name: 'image' }).apply(input) as tf.SymbolicTensor;
  const c1 = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', name: 'conv_a', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) })
    .apply(image);
  const b1 = tf.layers.batchNormalization({ name: 'bn_a' }).apply(c1);
  const r1 = tf.layers.activation({ activation: 'relu', name: 'relu_a' }).apply(b1) as tf.SymbolicTensor;
  const c2 = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'conv_b', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })
    .apply(r1);
  const b2 = tf.layers.batchNormalization({ name: 'bn_b' }).apply(c2) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'residual' }).apply([r1, b2]);
  const r2 = tf.layers.activation({ activation: 'relu', name: 'relu_b' }).apply(sum);
  let features = tf.layers.globalAveragePooling2d({ name: 'features' }).apply(r2) as tf.SymbolicTensor;
  if (dropout) {
    const dropped = tf.layers.dropout({ rate: 0.3, name: 'drop' }).apply(features);
    features = tf.layers
      .dense({ units: 16, activation: 'relu', name: 'hidden', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) })
      .apply(dropped) as tf.SymbolicTensor;
  }
  const logits = tf.layers
    .dense({ units: 10, name: 'logits', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) })
    .apply(features) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: logits, name: 'tiny_resnet' });
  // Statistics a pretrained network would have, so that "unchanged" means something.
  for (const name of ['bn_a', 'bn_b']) {
    const layer = model.getLayer(name);
    const [gamma, beta] = layer.getWeights();
    layer.setWeights([gamma, beta, tf.fill([8], 0.05), tf.fill([8], 0.5)]);
  }
  return model;
}

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
  root = await tempDir();
  featuresRoot = path.join(root, 'features');
  upper = await mnistDigits(root, 'upper', 'train', 10000, 1000, [5, 6, 7, 8, 9]);
  upperTest = await mnistDigits(root, 'upper-test', 't10k', 1000, 600, [5, 6, 7, 8, 9]);
  for (const [name, dropout] of [
    ['conv-base', false],
    ['dropout-base', true],
  ] as const) {
    const model = functionalBase(dropout);
    await saveModel(model, path.join(root, name));
    model.dispose();
  }
  convBase = path.join(root, 'conv-base');
  dropoutBase = path.join(root, 'dropout-base');
  const cnn = trainSpec({ epochs: 1, batchSize: 32 });
  cnn.model.architecture = { kind: 'cnn', hidden: [32], filters: [8, 16], batchNorm: true };
  const all = await mnistDataset(root, 'all', 'train', 0, 1200);
  const pretrain = makeTask(root, 'cnn-base', cnn, { train: all });
  assert.equal((await runTraining(pretrain, () => {})).outcome, 'succeeded');
  cnnBase = pretrain.modelDir;
  baseline = tf.memory().numTensors;
});

const finetune = (strategy: JobSpec['strategy'], hp: Partial<Hyperparameters> = {}): JobSpec => ({
  ...trainSpec({ epochs: 2, batchSize: 32, optimizer: { name: 'adam', learningRate: 0.01 }, ...hp }),
  type: 'finetune',
  model: { base: 'base' },
  ...(strategy ? { strategy } : {}),
});

/** A finetune task on the upper digits; `cached` gives it the shared features root. */
function task(name: string, spec: JobSpec, base: string, baseModelId: string, cached = true): TrainingTask {
  return makeTask(root, name, spec, { train: upper, test: upperTest }, { baseModelDir: base, baseModelId, ...(cached ? { featuresRoot } : {}) });
}

const cacheOf = (messages: TrainingMessage[]) => messages.flatMap((m) => (m.type === 'featureCache' ? [m.report] : []));

async function weightsOf(dir: string): Promise<Map<string, Float32Array>> {
  const { model } = await loadModel(dir);
  const map = new Map(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
  model.dispose();
  return map;
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** The saved model's logits on the test set's raw examples, as a user of the model would get them. */
async function predictions(dir: string): Promise<Float32Array> {
  const { model } = await loadModel(dir);
  const p = upperTest.preprocessing;
  assert.ok('scale' in p, 'the test set keeps its own {scale, offset}');
  const { scale, offset } = p;
  const raw = new Uint8Array(await readFile(path.join(upperTest.dir, 'features.bin')));
  const logits = tf.tidy(() => model.predict(tf.add(tf.mul(tf.tensor2d(raw, [upperTest.numExamples, 784], 'float32'), scale), offset)) as tf.Tensor);
  const values = (await logits.data()) as Float32Array;
  logits.dispose();
  model.dispose();
  return values;
}

const newHeadSpec = finetune({ kind: 'freeze', newHead: true, featureLayer: 'relu_b', head: { hidden: [16] } });
let cachedRun: { task: TrainingTask; result: TrainingResult } | undefined;

test('a new head on a named layer of a functional conv base: base+head saved, frozen weights and batch-norm statistics bit-identical, cache built', async () => {
  const { messages, report } = recorder();
  const t = task('head', newHeadSpec, convBase, 'conv-base');
  const result = await runTraining(t, report);
  assert.equal(tf.memory().numTensors, baseline);
  assert.ok(result.outcome === 'succeeded');
  cachedRun = { task: t, result };
  assert.match(
    messages.map((m) => (m.type === 'log' ? m.message : '')).join('\n'),
    /new head on layer 'relu_b' \(1568 features\): the base model's layers 'features', 'logits' were replaced by 'head_flatten', 'head_dense_1', 'logits_2' with 5 classes/,
  );
  const [cache] = cacheOf(messages);
  assert.equal(cache?.status, 'built');
  assert.equal(cache.layer, 'relu_b');
  assert.equal(cache.bytes, upper.numExamples * 1568 * 4);
  assert.deepEqual(result.featureCache, cache);

  const saved = await loadModel(t.modelDir);
  try {
    assert.deepEqual(
      saved.model.layers.map((l) => l.name),
      ['pixels', 'image', 'conv_a', 'bn_a', 'relu_a', 'conv_b', 'bn_b', 'residual', 'relu_b', 'head_flatten', 'head_dense_1', 'logits_2'],
    );
    assert.deepEqual(saved.model.inputs[0].shape, [null, 784], 'the saved model takes raw examples, not features');
  } finally {
    saved.model.dispose();
  }
  const before = await weightsOf(convBase);
  const after = await weightsOf(t.modelDir);
  for (const [name, value] of before) {
    if (name.startsWith('logits/')) {
      assert.ok(!after.has(name), `${name} went with the old head`);
      continue;
    }
    assert.ok(same(after.get(name)!, value), `${name} is bit-identical`);
  }
  assert.ok(same(after.get('bn_a/moving_mean')!, new Float32Array(8).fill(0.05)), 'frozen batch-norm statistics neither updated nor replaced');
  assert.ok(result.metrics.testAccuracy > 0.3, `the head learns something from random conv features (chance 0.2): ${result.metrics.testAccuracy}`);
  const reloaded = (await loadModel(t.modelDir)).model;
  const again = await evaluate(reloaded, upperTest);
  reloaded.dispose();
  assert.equal(again.accuracy, result.metrics.testAccuracy, 'the saved whole network reproduces the test accuracy from raw inputs');
});

test('the cache is reused by the next job on the same base and dataset, and its model predicts as an uncached run does', async () => {
  assert.ok(cachedRun, 'needs the first test');
  const reuse = recorder();
  const reused = await runTraining(task('head-again', newHeadSpec, convBase, 'conv-base'), reuse.report);
  assert.ok(reused.outcome === 'succeeded');
  assert.equal(cacheOf(reuse.messages)[0]?.status, 'reused');
  const files = await readdir(path.join(featuresRoot, 'conv-base', upper.id));
  assert.equal(files.length, 1, 'one cache per base, dataset and cut');

  const plain = recorder();
  const uncachedTask = task('head-uncached', newHeadSpec, convBase, 'conv-base', false);
  const uncached = await runTraining(uncachedTask, plain.report);
  assert.ok(uncached.outcome === 'succeeded');
  assert.equal(cacheOf(plain.messages)[0]?.status, 'unused');
  const [a, b] = [await predictions(cachedRun.task.modelDir), await predictions(uncachedTask.modelDir)];
  const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  assert.ok(diff < 1e-3, `cached and uncached runs end with the same model: logits differ by ${diff}`);
  assert.equal(tf.memory().numTensors, baseline);
});

test('no cache with a dropout before the cut, with augmentation, or for a strategy that trains every layer; the job says why', async () => {
  const reasons: Record<string, string | undefined> = {};
  const run = async (name: string, spec: JobSpec, base: string) => {
    const { messages, report } = recorder();
    const result = await runTraining(task(name, spec, base, name), report);
    assert.equal(result.outcome, 'succeeded');
    const [cache] = cacheOf(messages);
    assert.equal(cache?.status, 'unused');
    reasons[name] = cache.reason;
  };
  await run('dropout', finetune({ kind: 'freeze', newHead: true }), dropoutBase);
  const augmented = finetune({ kind: 'freeze', newHead: true, featureLayer: 'features' }, { epochs: 1 });
  (augmented.hyperparameters as Record<string, unknown>).augment = { noise: 0.01 };
  await run('augmented', augmented, convBase);
  await run('full', finetune({ kind: 'full', newHead: true }, { epochs: 1 }), cnnBase);
  assert.match(reasons.dropout!, /layer 'drop' \(Dropout\) before the frozen part's end 'hidden' draws new random numbers at every step/);
  assert.match(reasons.augmented!, /hyperparameters.augment/);
  assert.match(reasons.full!, /strategy full trains every layer/);
  assert.equal(tf.memory().numTensors, baseline);
});

test("trainFrom on the service's cnn freezes exactly the layers before it, bit for bit, and trains on the cached pool_1 outputs", async () => {
  const { messages, report } = recorder();
  const t = task('train-from', finetune({ kind: 'freeze', newHead: true, trainFrom: 'conv_2' }, { epochs: 1 }), cnnBase, 'cnn-base');
  const result = await runTraining(t, report);
  assert.ok(result.outcome === 'succeeded');
  const [cache] = cacheOf(messages);
  assert.equal(cache?.status, 'built');
  assert.equal(cache.layer, 'pool_1');
  const before = await weightsOf(cnnBase);
  const after = await weightsOf(t.modelDir);
  const frozen = [...before.keys()].filter((n) => n.startsWith('conv_1'));
  assert.deepEqual(frozen.sort(), ['conv_1/bias', 'conv_1/kernel', 'conv_1_bn/beta', 'conv_1_bn/gamma', 'conv_1_bn/moving_mean', 'conv_1_bn/moving_variance']);
  for (const name of frozen) assert.ok(same(after.get(name)!, before.get(name)!), `${name} is bit-identical`);
  for (const name of ['conv_2/kernel', 'conv_2_bn/moving_mean', 'dense_1/kernel']) assert.ok(!same(after.get(name)!, before.get(name)!), `${name} was trained`);
  assert.equal(tf.memory().numTensors, baseline);
});

test('a job on cached features resumed from a checkpoint ends bit for bit as its uninterrupted twin', async () => {
  const spec = { ...finetune({ kind: 'freeze', newHead: true, trainFrom: 'conv_2' }, { epochs: 2 }), checkpoint: { everySteps: 7 } };
  const twinTask = task('resume-twin', spec, cnnBase, 'cnn-base');
  const twin = await runTraining(twinTask, () => {});
  const t = task('resume', spec, cnnBase, 'cnn-base');
  const controller = new AbortController();
  const stopped = await runTraining(
    t,
    (m) => {
      if (m.type === 'checkpoint' && m.step === 14) controller.abort('pause');
    },
    controller.signal,
  );
  assert.equal(stopped.outcome, 'cancelled');
  const { messages, report } = recorder();
  const resumed = await runTraining(t, report);
  assert.ok(resumed.outcome === 'succeeded' && twin.outcome === 'succeeded');
  assert.equal(cacheOf(messages)[0]?.status, 'reused');
  assert.ok(messages.some((m) => m.type === 'log' && /resuming from checkpoint/.test(m.message)));
  const [a, b] = [await weightsOf(twinTask.modelDir), await weightsOf(t.modelDir)];
  for (const [name, value] of a) assert.ok(same(value, b.get(name)!), `${name} is bit-identical to the twin's`);
  assert.equal(resumed.metrics.testAccuracy, twin.metrics.testAccuracy);
  assert.equal(tf.memory().numTensors, baseline);
});
