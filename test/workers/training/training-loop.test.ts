import assert from 'node:assert/strict';
import { access, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { selectBackend } from '../../../workers/training/backend.js';
import { Batcher } from '../../../workers/training/data.js';
import { evaluate } from '../../../workers/training/evaluate.js';
import { saveModel } from '../../../workers/training/models.js';
import { TrainingError, type DatasetFiles, type TrainingMessage, type TrainingResult, type TrainingTask } from '../../../src/jobs/task.js';
import { runTraining } from '../../../workers/training/training-loop.js';
import { makeTask, mnistDataset, recorder, tempDir, trainSpec } from './fixtures.js';

let root: string;
let train: DatasetFiles;
let validation: DatasetFiles;
let test10k: DatasetFiles;
let baseline: number;

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
  root = await tempDir();
  train = await mnistDataset(root, 'train', 'train', 0, 2000);
  validation = await mnistDataset(root, 'validation', 'train', 50000, 500);
  test10k = await mnistDataset(root, 'test', 't10k', 0, 1000);
  baseline = tf.memory().numTensors;
});

function assertNoLeak(): void {
  assert.equal(tf.memory().numTensors, baseline, 'every tensor created by the run was disposed');
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

async function rejectsWith(promise: Promise<unknown>, code: string, param: string): Promise<TrainingError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof TrainingError, `expected a TrainingError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.param, param);
  assert.equal(caught.name, 'UnrecoverableError');
  return caught;
}

/** A message sequence as letters: S started, P progress, M metrics, C checkpoint, L log, F feature cache. */
function shape(messages: TrainingMessage[]): string {
  return messages.map((m) => ({ started: 'S', progress: 'P', metrics: 'M', checkpoint: 'C', log: 'L', featureCache: 'F' })[m.type]).join('');
}

let trained: { dir: string; result: TrainingResult; messages: TrainingMessage[] } | undefined;

test('trains an MLP: ordered reports, falling loss, per-epoch checkpoints, a model that reproduces its test accuracy', async () => {
  const { messages, report } = recorder();
  const task = makeTask(root, 'learn', trainSpec({ epochs: 3 }), { train, validation, test: test10k });
  const result = await runTraining(task, report);
  assertNoLeak();
  trained = { dir: task.modelDir, result, messages };

  assert.equal(result.outcome, 'succeeded');
  assert.ok(result.outcome === 'succeeded');
  assert.equal(result.modelId, task.modelId);
  assert.equal(result.backend, 'wasm');
  assert.match(shape(messages), /^S(P+MC){3}$/);
  assert.deepEqual(messages[0], { type: 'started', backend: 'wasm', numTensors: baseline });

  const steps = Math.ceil(2000 / 32);
  const progress = messages.flatMap((m) => (m.type === 'progress' ? [m] : []));
  for (const p of progress) {
    assert.equal(p.progress.epochs, 3);
    assert.equal(p.progress.steps, steps);
    assert.ok(p.progress.epoch >= 1 && p.progress.epoch <= 3 && p.progress.step >= 1 && p.progress.step <= steps);
  }
  const epochEnds = messages.flatMap((m, i) => (m.type === 'metrics' ? [messages[i - 1]] : []));
  assert.deepEqual(
    epochEnds.map((m) => m?.type === 'progress' && m.progress),
    [1, 2, 3].map((epoch) => ({ epoch, epochs: 3, step: steps, steps })),
    'each epoch ends with a progress report at its last step',
  );

  const epochMetrics = messages.flatMap((m) => (m.type === 'metrics' ? [m] : []));
  assert.deepEqual(
    epochMetrics.map((m) => m.epoch),
    [1, 2, 3],
  );
  for (const { metrics } of epochMetrics) {
    assert.deepEqual(Object.keys(metrics).sort(), ['accuracy', 'epochSeconds', 'loss', 'samplesPerSecond', 'valAccuracy', 'valLoss']);
    assert.ok(metrics.samplesPerSecond > 0 && metrics.epochSeconds > 0);
  }
  const losses = epochMetrics.map((m) => m.metrics.loss);
  assert.ok(losses[0] > losses[1] && losses[1] > losses[2], `loss falls every epoch: ${losses.join(', ')}`);
  assert.ok((progress[0].metrics?.loss ?? NaN) > losses[2]);
  assert.ok(epochMetrics[2].metrics.valAccuracy > 0.8, `validation accuracy ${epochMetrics[2].metrics.valAccuracy}`);
  assert.ok(result.metrics.testAccuracy > 0.8, `test accuracy ${result.metrics.testAccuracy} (chance is 0.1)`);
  assert.equal(result.metrics.loss, losses[2]);
  assert.ok(result.metrics.testLoss > 0);

  const checkpoints = messages.flatMap((m) => (m.type === 'checkpoint' ? [m] : []));
  const names = [1, 2, 3].map((e) => `epoch-000${e}-step-${String(e * steps).padStart(8, '0')}`);
  assert.deepEqual(await readdir(task.checkpointsDir), names);
  for (const [i, c] of checkpoints.entries()) {
    assert.equal(c.epoch, i + 1);
    assert.equal(c.step, (i + 1) * steps);
    assert.equal(c.path, path.join(task.checkpointsDir, names[i]));
    assert.deepEqual(c.metrics, epochMetrics[i].metrics);
    assert.deepEqual((await readdir(c.path)).sort(), ['model.json', 'optimizer.bin', 'state.json', 'weights.bin']);
    const state = JSON.parse(await readFile(path.join(c.path, 'state.json'), 'utf8'));
    assert.equal(state.epoch, i + 1);
    assert.equal(state.step, (i + 1) * steps);
    assert.equal(state.stepsPerEpoch, steps);
    assert.deepEqual(state.sums, { loss: 0, correct: 0, seen: 0, signals: {} }, 'an epoch-end checkpoint starts the next epoch afresh');
    assert.deepEqual(state.metrics, epochMetrics[i].metrics);
    assert.equal(state.optimizer.name, 'sgd');
    const slots = state.optimizer.weights.map((w: { name: string }) => w.name);
    assert.deepEqual(slots, ['iter', 'dense_1/kernel/momentum', 'dense_1/bias/momentum', 'logits/kernel/momentum', 'logits/bias/momentum']);
    const optimizerBytes = (await readFile(path.join(c.path, 'optimizer.bin'))).length;
    assert.equal(optimizerBytes, 4 * (1 + 784 * 32 + 32 + 32 * 10 + 10));
  }

  // Loaded with nothing but tfjs, the saved model scores exactly the reported test accuracy.
  const json = JSON.parse(await readFile(path.join(task.modelDir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  assert.deepEqual(json.userDefinedMetadata, {
    tfjsAdapt: { inputShape: [784], classes: train.classes, preprocessing: train.preprocessing, output: 'logits', jobId: task.jobId, method: 'full' },
  });
  // The test set's report: per class, and a confusion matrix whose diagonal is the accuracy.
  const testReport = result.report!;
  assert.deepEqual(testReport.classes, train.classes);
  const matrix = testReport.confusionMatrix;
  assert.equal(
    matrix.flat().reduce((a, b) => a + b, 0),
    1000,
  );
  assert.equal(matrix.reduce((a, row, i) => a + row[i], 0) / 1000, result.metrics.testAccuracy);
  testReport.perClassAccuracy.forEach((p, c) => assert.equal(p, matrix[c][c] / matrix[c].reduce((a, b) => a + b, 0)));
  const weights = await readFile(path.join(task.modelDir, 'weights.bin'));
  const loaded = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  const again = await evaluate(loaded, test10k);
  loaded.dispose();
  assert.equal(again.accuracy, result.metrics.testAccuracy);
  assert.equal(again.loss, result.metrics.testLoss);
  assertNoLeak();
});

test('the same seed gives the same final loss, another seed a different one', async () => {
  const run = async (name: string, seed: number) => {
    const result = await runTraining(makeTask(root, name, trainSpec({ epochs: 1, seed }), { train }), () => {});
    assert.ok(result.outcome === 'succeeded');
    return result.metrics.loss;
  };
  const first = await run('seed-a', 7);
  const second = await run('seed-b', 7);
  const other = await run('seed-c', 8);
  assert.equal(first, second);
  assert.notEqual(first, other);
  assertNoLeak();
});

/** Runs `task`, aborting with `reason` at the first message `when` picks. */
async function abortedRun(task: TrainingTask, reason: string, when: (m: TrainingMessage) => boolean) {
  const controller = new AbortController();
  const { messages, report } = recorder();
  const result = await runTraining(
    task,
    (m) => {
      report(m);
      if (when(m)) controller.abort(reason);
    },
    controller.signal,
  );
  assertNoLeak();
  return { result, messages };
}

/**
 * Runs `task`, aborting it with `reason` while the loop fills its `batches`-th batch: mid-epoch
 * wherever the machine's speed puts the first progress report. Returns what was reported before
 * the abort and after it.
 */
async function abortedMidEpoch(task: TrainingTask, reason: string, batches: number) {
  const controller = new AbortController();
  const { messages, report } = recorder();
  // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, and called with the batcher as `this`
  const fill = Batcher.prototype.fill;
  let filled = 0;
  let before = -1;
  Batcher.prototype.fill = function (this: Batcher, step: number) {
    if (++filled === batches) {
      before = messages.length;
      controller.abort(reason);
    }
    return fill.call(this, step);
  };
  try {
    const result = await runTraining(task, report, controller.signal);
    assertNoLeak();
    assert.ok(before >= 0, `the job filled fewer than ${batches} batches`);
    return { result, before: messages.slice(0, before), after: messages.slice(before) };
  } finally {
    Batcher.prototype.fill = fill;
  }
}

test('a cancel mid-epoch stops within a batch, writes nothing and says where it stopped', async () => {
  const task = makeTask(root, 'cancel-mid', trainSpec({ epochs: 2, batchSize: 1 }), { train, test: test10k });
  const { result, before, after } = await abortedMidEpoch(task, 'cancel', 700);
  assert.deepEqual(after, [], 'nothing is reported after the abort');
  assert.match(shape(before), /^SP*$/, 'before it, progress only');
  // the step whose batch was being filled finishes: 700 steps done
  assert.deepEqual(result, { outcome: 'cancelled', metrics: {}, stoppedAt: { epoch: 1, step: 700 } });
  assert.equal(await exists(task.checkpointsDir), false);
  assert.equal(await exists(task.modelDir), false);
});

test('a pause (or shutdown) mid-epoch checkpoints the step it stopped at', async () => {
  const task = makeTask(root, 'pause-mid', trainSpec({ epochs: 2, batchSize: 1 }), { train });
  const { result, after } = await abortedMidEpoch(task, 'pause', 700);
  assert.equal(shape(after), 'C', 'a checkpoint, and nothing else, after the abort');
  assert.ok(result.outcome === 'cancelled');
  assert.deepEqual(result.stoppedAt, { epoch: 1, step: 700 });
  const saved = after[0];
  assert.ok(saved?.type === 'checkpoint');
  assert.deepEqual({ epoch: saved.epoch, step: saved.step }, result.stoppedAt);
  assert.deepEqual(Object.keys(saved.metrics).sort(), ['accuracy', 'loss'], 'the running figures of the epoch');
  assert.deepEqual(await readdir(task.checkpointsDir), ['epoch-0001-step-00000700']);
  assert.equal(await exists(task.modelDir), false);
});

test('an abort after an epoch keeps that checkpoint, writes no other, and returns its metrics', async () => {
  const task = makeTask(root, 'cancel-epoch', trainSpec({ epochs: 3 }), { train });
  const { result, messages } = await abortedRun(task, 'shutdown', (m) => m.type === 'checkpoint');
  assert.equal(result.outcome, 'cancelled');
  assert.match(shape(messages), /^SP+MC$/);
  const metrics = messages.find((m) => m.type === 'metrics');
  assert.ok(metrics?.type === 'metrics');
  assert.deepEqual(result, { outcome: 'cancelled', metrics: metrics.metrics, stoppedAt: { epoch: 1, step: 63 } });
  assert.deepEqual(await readdir(task.checkpointsDir), ['epoch-0001-step-00000063']);
  assert.equal(await exists(task.modelDir), false);
});

test('an already aborted signal returns cancelled before any step', async () => {
  const { messages, report } = recorder();
  const result = await runTraining(makeTask(root, 'cancel-early', trainSpec(), { train }), report, AbortSignal.abort('pause'));
  assert.deepEqual(result, { outcome: 'cancelled', metrics: {}, stoppedAt: { epoch: 0, step: 0 } });
  assert.equal(shape(messages), 'S');
  assertNoLeak();
});

test('a corrupt dataset fails with dataset_corrupt naming the spec field', async () => {
  const broken = await mnistDataset(root, 'broken-train', 'train', 0, 100);
  await truncate(path.join(broken.dir, 'features.bin'), 100 * 784 - 1);
  const error = await rejectsWith(
    runTraining(makeTask(root, 'corrupt-train', trainSpec(), { train: broken }), () => {}),
    'dataset_corrupt',
    '/data/train',
  );
  assert.match(error.message, /features\.bin has 78399 bytes; expected .* = 78400/);

  const badLabels = await mnistDataset(root, 'bad-labels', 't10k', 0, 100);
  const labels = new Int32Array(100).fill(3);
  labels[42] = 10;
  await writeFile(path.join(badLabels.dir, 'labels.bin'), new Uint8Array(labels.buffer));
  const task = makeTask(root, 'corrupt-test', trainSpec(), { train, test: badLabels });
  const labelError = await rejectsWith(
    runTraining(task, () => {}),
    'dataset_corrupt',
    '/data/test',
  );
  assert.match(labelError.message, /example 42 has label 10; expected an integer in \[0, 10\)/);
  assertNoLeak();
});

test('a diverging loss fails with diverged, and frees everything', async () => {
  // Raw pixel values (0..255), a huge learning rate and no activation to stop the growth.
  const raw = { ...train, preprocessing: { scale: 1, offset: 0 } };
  const spec = trainSpec({ epochs: 1, optimizer: { name: 'sgd', learningRate: 10 } });
  spec.model.architecture!.activation = 'linear';
  const error = await rejectsWith(
    runTraining(makeTask(root, 'diverge', spec, { train: raw }), () => {}),
    'diverged',
    '/hyperparameters/optimizer/learningRate',
  );
  assert.match(error.message, /the training loss became (NaN|Infinity)/);
  assertNoLeak();
});

test('finetune continues from a base model and records the lineage', async () => {
  assert.ok(trained, 'runs after the training test');
  const baseAccuracy = trained.result.metrics.testAccuracy;
  const more = await mnistDataset(root, 'more', 'train', 2000, 2000);
  const spec = { ...trainSpec({ epochs: 1 }), type: 'finetune' as const, model: { base: 'model-learn' }, strategy: { kind: 'full' as const } };
  const { messages, report } = recorder();
  const task = makeTask(root, 'finetune', spec, { train: more, test: test10k }, { baseModelDir: trained.dir, baseModelId: 'model-learn' });
  const result = await runTraining(task, report);
  assertNoLeak();
  assert.ok(result.outcome === 'succeeded');
  assert.ok(result.metrics.testAccuracy > baseAccuracy - 0.05, `fine-tuned ${result.metrics.testAccuracy} vs base ${baseAccuracy}`);
  // The first progress loss is already low: training started from the base weights, not from scratch.
  const first = messages.find((m) => m.type === 'progress');
  assert.ok(first?.type === 'progress' && (first.metrics?.loss ?? NaN) < 1, `first loss ${first?.type === 'progress' && first.metrics?.loss}`);
  const json = JSON.parse(await readFile(path.join(task.modelDir, 'model.json'), 'utf8'));
  assert.equal(json.userDefinedMetadata.tfjsAdapt.baseModelId, 'model-learn');
  assert.equal(json.userDefinedMetadata.tfjsAdapt.jobId, task.jobId);
});

test('finetune rejects a base model that does not fit the data, and warns about other preprocessing', async () => {
  assert.ok(trained, 'runs after the training test');
  const spec = { ...trainSpec({ epochs: 1 }), type: 'finetune' as const, model: { base: 'model-learn' } };
  const twelve = { ...train, numClasses: 12, classes: [...train.classes, '10', '11'] };
  const task = makeTask(root, 'misfit', spec, { train: twelve }, { baseModelDir: trained.dir });
  const error = await rejectsWith(
    runTraining(task, () => {}),
    'incompatible_model',
    '/model/base',
  );
  assert.match(error.message, /output has shape \[\?, 10\]; expected \[\?, 12\]/);
  assertNoLeak();

  const rescaled = { ...train, preprocessing: { scale: 1 / 255, offset: 0 } };
  const { messages, report } = recorder();
  await runTraining(makeTask(root, 'rescaled', spec, { train: rescaled }, { baseModelDir: trained.dir }), report);
  const warning = messages.find((m) => m.type === 'log');
  assert.ok(warning?.type === 'log' && warning.level === 'warn');
  assert.match(warning.message, /trained on inputs by scale 0\.00784.* but dataset train is fed by scale 0\.00392/);
  assertNoLeak();
});

test('a softmax base model is trained on its logits', async () => {
  // seeded, so that every run trains the same (unseeded, one full suite run in many ended below the bound)
  const keras = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [784], units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) })],
  });
  const dir = path.join(root, 'softmax-base');
  await saveModel(keras, dir);
  keras.dispose();
  const spec = { ...trainSpec({ epochs: 1 }), type: 'finetune' as const, model: { base: 'softmax' } };
  const { messages, report } = recorder();
  const result = await runTraining(makeTask(root, 'from-softmax', spec, { train, test: test10k }, { baseModelDir: dir }), report);
  assert.ok(result.outcome === 'succeeded' && result.metrics.testAccuracy > 0.7);
  assert.match(shape(messages), /^SLF(P+MC)$/);
  assertNoLeak();
});

test('a spec the child cannot run fails with invalid_spec or incompatible_dataset', async () => {
  const finetune = { ...trainSpec(), type: 'finetune' as const, model: { base: 'missing' } };
  const noBase = await rejectsWith(
    runTraining(makeTask(root, 'no-base', finetune, { train }), () => {}),
    'invalid_spec',
    '/model/base',
  );
  assert.match(noBase.message, /needs a base model/);
  const noArchitecture = { ...trainSpec(), model: {} };
  await rejectsWith(
    runTraining(makeTask(root, 'no-arch', noArchitecture, { train }), () => {}),
    'invalid_spec',
    '/model/architecture',
  );
  const images = { ...validation, featureShape: [28, 28] };
  const mismatch = await rejectsWith(
    runTraining(makeTask(root, 'mismatch', trainSpec(), { train, validation: images }), () => {}),
    'incompatible_dataset',
    '/data/validation',
  );
  assert.match(mismatch.message, /featureShape \[28, 28\] .* expected those of the training set train: \[784\]/);
  assertNoLeak();
});
