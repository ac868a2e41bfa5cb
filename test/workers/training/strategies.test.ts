/** Fine-tuning strategies, early stopping, schedules, optimizers, the cnn and the evaluate job, end to end through runTraining. */
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import type { Hyperparameters, JobSpec } from '../../../src/schemas/job.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { evaluate } from '../../../workers/training/evaluate.js';
import { loadModel, saveModel } from '../../../workers/training/models.js';
import { createOptimizer, disposeOptimizer, learningRateSchedule, setLearningRate } from '../../../workers/training/optimizers.js';
import { type DatasetFiles, type TrainingResult } from '../../../src/jobs/task.js';
import { runTraining } from '../../../workers/training/training-loop.js';
import { makeTask, mnistDataset, mnistDigits, mnistSplits, recorder, trainSpec } from './fixtures.js';

let root: string;
let train: DatasetFiles;
let validation: DatasetFiles;
let test1k: DatasetFiles;
let more: DatasetFiles;
let upper: DatasetFiles;
let upperTest: DatasetFiles;
/** a model trained on all ten digits, with batch norm: the base of the fine-tunes */
let baseDir: string;
let baseline: number;

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
  ({ root, train, validation, test: test1k } = await mnistSplits());
  more = await mnistDataset(root, 'more', 'train', 2000, 1000);
  upper = await mnistDigits(root, 'upper', 'train', 10000, 1000, [5, 6, 7, 8, 9]);
  upperTest = await mnistDigits(root, 'upper-test', 't10k', 1000, 1000, [5, 6, 7, 8, 9]);
  const spec = trainSpec({ epochs: 1, batchSize: 32 });
  spec.model.architecture!.batchNorm = true;
  const base = makeTask(root, 'base', spec, { train });
  assert.equal((await runTraining(base, () => {})).outcome, 'succeeded');
  baseDir = base.modelDir;
  baseline = tf.memory().numTensors;
});

const finetune = (strategy: JobSpec['strategy'], hp: Partial<Hyperparameters> = {}): JobSpec => ({
  ...trainSpec({ epochs: 1, batchSize: 32, ...hp }),
  type: 'finetune',
  model: { base: 'base' },
  ...(strategy ? { strategy } : {}),
});

async function weightsOf(dir: string): Promise<Map<string, Float32Array>> {
  const { model } = await loadModel(dir);
  const map = new Map(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
  model.dispose();
  return map;
}

test('freeze with a new head: a 5-class head on a 10-class base, every frozen weight and batch-norm statistic bit-identical', async () => {
  const { messages, report } = recorder();
  const task = makeTask(
    root,
    'freeze',
    finetune({ kind: 'freeze', newHead: true }),
    { train: upper, test: upperTest },
    { baseModelDir: baseDir, baseModelId: 'base' },
  );
  const result = await runTraining(task, report);
  assert.equal(tf.memory().numTensors, baseline);
  assert.ok(result.outcome === 'succeeded');
  assert.ok(
    messages.some(
      (m) =>
        m.type === 'log' &&
        /new head on layer 'dense_1_act' \(32 features\): the base model's layers 'logits' were replaced by 'logits_2' with 5 classes/.test(m.message),
    ),
  );
  const before = await weightsOf(baseDir);
  const after = await weightsOf(task.modelDir);
  assert.deepEqual([...after.keys()].sort(), [
    'dense_1/bias',
    'dense_1/kernel',
    'dense_1_bn/beta',
    'dense_1_bn/gamma',
    'dense_1_bn/moving_mean',
    'dense_1_bn/moving_variance',
    'logits_2/bias',
    'logits_2/kernel',
  ]);
  for (const [name, value] of after) {
    if (name.startsWith('logits_2/')) continue;
    assert.ok(Buffer.from(value.buffer).equals(Buffer.from(before.get(name)!.buffer)), `${name} is bit-identical`);
  }
  assert.deepEqual(result.report!.classes, ['5', '6', '7', '8', '9']);
  assert.ok(result.metrics.testAccuracy > 0.6, `a head on frozen features learns the new digits: ${result.metrics.testAccuracy}`);
});

test('l2sp with a huge alpha keeps the weights at w0, where full fine-tuning moves them', async () => {
  // alpha = 1 / learningRate: each step pulls a weight all the way back to w0 before the data's gradient moves it.
  const sgd = { batchSize: 16, optimizer: { name: 'sgd' as const, learningRate: 0.001 } };
  const moved = async (name: string, strategy: JobSpec['strategy']) => {
    const task = makeTask(root, name, finetune(strategy, sgd), { train: more }, { baseModelDir: baseDir });
    const result: TrainingResult = await runTraining(task, () => {});
    assert.equal(result.outcome, 'succeeded');
    const [before, after] = [await weightsOf(baseDir), await weightsOf(task.modelDir)];
    return Math.max(...[...after].filter(([n]) => !n.includes('moving')).map(([n, w]) => Math.max(...w.map((v, i) => Math.abs(v - before.get(n)![i])))));
  };
  const free = await moved('full-sgd', { kind: 'full' });
  const pinned = await moved('l2sp-huge', { kind: 'l2sp', alpha: 1000 });
  assert.equal(tf.memory().numTensors, baseline);
  assert.ok(pinned < 5e-4 && pinned < free / 10, `largest move: ${pinned} with alpha 1000, ${free} without`);
});

test("early stopping stops after `patience` epochs without improvement and keeps the best epoch's weights", async () => {
  const { messages, report } = recorder();
  // No later epoch can beat the first by a minDelta this large.
  const spec = {
    ...trainSpec({ epochs: 5, batchSize: 64, earlyStopping: { patience: 2, monitor: 'valAccuracy', minDelta: 1 } }),
    data: { train: 'train', validation: 'validation', test: 'test' },
  };
  const task = makeTask(root, 'early', spec, { train, validation, test: test1k });
  const result = await runTraining(task, report);
  assert.ok(result.outcome === 'succeeded');
  const epochs = messages.flatMap((m) => (m.type === 'metrics' ? [m] : []));
  assert.deepEqual(
    epochs.map((m) => m.epoch),
    [1, 2, 3],
  );
  assert.equal(result.metrics.bestEpoch, 1);
  assert.equal(result.metrics.epochsRun, 3);
  assert.equal(result.metrics.valAccuracy, epochs[0].metrics.valAccuracy);
  const logs = messages.flatMap((m) => (m.type === 'log' ? [m.message] : []));
  assert.match(logs[0], /^early stopping after epoch 3: valAccuracy has not improved on epoch 1's .* for 2 epochs$/);
  assert.match(logs[1], /^the model keeps the weights of epoch 1/);
  const { model } = await loadModel(task.modelDir);
  assert.equal((await evaluate(model, validation, { param: '/data/validation' })).accuracy, epochs[0].metrics.valAccuracy);
  model.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});

test('learning-rate schedules: step decays by epochs, cosine by steps to its minimum', () => {
  const hp = (lrSchedule: Hyperparameters['lrSchedule']): Hyperparameters => ({
    epochs: 4,
    batchSize: 1,
    optimizer: { name: 'sgd', learningRate: 0.1 },
    ...(lrSchedule ? { lrSchedule } : {}),
  });
  const step = learningRateSchedule(hp({ kind: 'step', stepSize: 2, gamma: 0.5 }), 10);
  assert.deepEqual([0, 9, 10, 19, 20, 39].map(step), [0.1, 0.1, 0.1, 0.1, 0.05, 0.05]);
  const cosine = learningRateSchedule(hp({ kind: 'cosine', minLearningRate: 0.02 }), 10);
  assert.equal(cosine(0), 0.1);
  assert.ok(Math.abs(cosine(39) - 0.02) < 1e-12);
  assert.ok(Math.abs(cosine(19.5) - 0.06) < 1e-12, 'halfway, halfway between');
  assert.equal(learningRateSchedule(hp(undefined), 10)(25), 0.1);
});

test('every optimizer takes its learning rate from the schedule', () => {
  for (const spec of [
    { name: 'sgd', learningRate: 0.1 },
    { name: 'sgd', learningRate: 0.1, momentum: 0.5 },
    { name: 'momentum', learningRate: 0.1, nesterov: true },
    { name: 'adam', learningRate: 0.1 },
    { name: 'rmsprop', learningRate: 0.1, centered: true },
  ] as const) {
    const start = tf.memory().numTensors;
    const w = tf.tidy(() => tf.variable(tf.scalar(1)));
    // One step from rest with a unit gradient moves every one of them by a multiple of the rate.
    const stepOf = (rate: number) => {
      const optimizer = createOptimizer(spec);
      setLearningRate(optimizer, rate);
      tf.tidy(() => {
        w.assign(tf.scalar(1));
        optimizer.applyGradients({ [w.name]: tf.scalar(1) });
      });
      disposeOptimizer(optimizer);
      return 1 - w.dataSync()[0];
    };
    const ratio = stepOf(0.01) / stepOf(0.001);
    assert.ok(Math.abs(ratio - 10) < 1e-3, `${JSON.stringify(spec)}: steps in ratio ${ratio}`);
    w.dispose();
    assert.equal(tf.memory().numTensors, start, `${spec.name} frees what it holds`);
  }
});

test('a cnn trains on wasm and an evaluate job reproduces its test report without writing anything', async () => {
  const spec = trainSpec({ epochs: 2, batchSize: 25, optimizer: { name: 'adam', learningRate: 0.005 } });
  spec.model.architecture = { kind: 'cnn', hidden: [16], filters: [4, 8], batchNorm: true };
  const task = makeTask(root, 'cnn', spec, { train: upper, test: upperTest });
  const trained = await runTraining(task, () => {});
  assert.ok(trained.outcome === 'succeeded');
  assert.ok(trained.metrics.testAccuracy > 0.5, `cnn test accuracy (chance: 0.2) ${trained.metrics.testAccuracy}`);

  const { messages, report } = recorder();
  const evaluation: JobSpec = { type: 'evaluate', model: { base: 'cnn' }, data: { test: 'upper-test' } };
  const job = makeTask(root, 'evaluate', evaluation, { test: upperTest }, { baseModelDir: task.modelDir, baseModelId: 'model-cnn' });
  const result = await runTraining(job, report);
  assert.equal(tf.memory().numTensors, baseline);
  assert.deepEqual(result, {
    outcome: 'succeeded',
    modelId: 'model-cnn',
    metrics: { testAccuracy: trained.metrics.testAccuracy, testLoss: trained.metrics.testLoss, testExamples: upperTest.numExamples },
    report: trained.report,
    backend: 'wasm',
  });
  assert.deepEqual(
    messages.map((m) => m.type),
    ['started'],
  );
  await assert.rejects(access(job.modelDir));
  await assert.rejects(access(job.checkpointsDir));
  const json = JSON.parse(await readFile(path.join(task.modelDir, 'model.json'), 'utf8'));
  assert.equal(json.userDefinedMetadata.tfjsAdapt.method, 'full');
});

test("a functional model's convolution trains on wasm, through the backprop kernels wasm lacks (gradients/wasm-kernels.ts)", async () => {
  const input = tf.input({ shape: [784] });
  const image = tf.layers.reshape({ targetShape: [28, 28, 1] }).apply(input) as tf.SymbolicTensor;
  const conv = tf.layers.conv2d({ filters: 2, kernelSize: 3, name: 'conv' }).apply(image) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 10 }).apply(tf.layers.flatten().apply(conv)) as tf.SymbolicTensor;
  const functional = tf.model({ inputs: input, outputs: logits });
  const dir = path.join(root, 'functional');
  await saveModel(functional, dir);
  functional.dispose();
  const task = makeTask(root, 'functional-ft', finetune(undefined), { train }, { baseModelDir: dir });
  const result = await runTraining(task, () => {});
  assert.equal(result.outcome, 'succeeded', JSON.stringify(result));
  const [before, after] = [await weightsOf(dir), await weightsOf(task.modelDir)];
  const kernel = [...before.keys()].find((name) => name.startsWith('conv/kernel'));
  assert.ok(kernel !== undefined, [...before.keys()].join(', '));
  assert.notDeepEqual(after.get(kernel), before.get(kernel), "the convolution's kernel was trained");
  assert.equal(tf.memory().numTensors, baseline);
});
