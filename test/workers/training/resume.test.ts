import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { MAX_EPOCHS, type JobSpec } from '../../../src/schemas/job.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { TrainingError, type DatasetFiles, type TrainingMessage, type TrainingResult, type TrainingTask } from '../../../src/jobs/task.js';
import { runTraining } from '../../../workers/training/training-loop.js';
import { makeTask, mnistDataset, mnistSplits, recorder, trainSpec } from './fixtures.js';

let root: string;
let train: DatasetFiles;
let validation: DatasetFiles;
let test1k: DatasetFiles;
let target: DatasetFiles;
let baseline: number;

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
  ({ root, train, validation, test: test1k } = await mnistSplits());
  // Another slice of the digits stands in for a target domain: exactness does not need a shift.
  target = await mnistDataset(root, 'target', 'train', 20000, 700);
  baseline = tf.memory().numTensors;
});

/** Every figure that depends on what was learned (not on timing). */
const learned = (metrics: Record<string, number>) =>
  Object.fromEntries(Object.entries(metrics).filter(([k]) => k !== 'samplesPerSecond' && k !== 'epochSeconds'));

const epochMetrics = (messages: TrainingMessage[]) => messages.flatMap((m) => (m.type === 'metrics' ? [{ epoch: m.epoch, metrics: learned(m.metrics) }] : []));
const checkpointSteps = (messages: TrainingMessage[]) => messages.flatMap((m) => (m.type === 'checkpoint' ? [m.step] : []));

/**
 * Trains `spec` uninterrupted, then again in a second task that is aborted with `reason` at the
 * first message `when` picks and run once more on the same checkpoints; asserts that both end
 * with the same metrics and the same weights, bit for bit. Returns the interrupted run's messages.
 */
async function twins(name: string, spec: JobSpec, data: TrainingTask['data'], reason: string, when: (m: TrainingMessage, seen: TrainingMessage[]) => boolean) {
  const uninterrupted = recorder();
  const twinTask = makeTask(root, `${name}-twin`, spec, data);
  const twin = await runTraining(twinTask, uninterrupted.report);
  assert.equal(twin.outcome, 'succeeded');

  const task = makeTask(root, name, spec, data);
  const first: TrainingMessage[] = [];
  const controller = new AbortController();
  const stopped = await runTraining(
    task,
    (m) => {
      first.push(m);
      if (!controller.signal.aborted && when(m, first)) controller.abort(reason);
    },
    controller.signal,
  );
  assert.equal(stopped.outcome, 'cancelled');
  assert.equal(tf.memory().numTensors, baseline, 'the stopped run freed every tensor');
  const second = recorder();
  const resumed = await runTraining(task, second.report);
  assert.equal(tf.memory().numTensors, baseline, 'the resumed run freed every tensor');
  assert.ok(resumed.outcome === 'succeeded' && twin.outcome === 'succeeded');

  assert.deepEqual(learned(resumed.metrics), learned(twin.metrics));
  assert.deepEqual(resumed.report, twin.report);
  const weights = async (t: TrainingTask) => readFile(path.join(t.modelDir, 'weights.bin'));
  assert.ok((await weights(task)).equals(await weights(twinTask)), 'the saved weights are the same bytes');
  // Every epoch the resumed run finished, the one it came back into included, has its twin's figures.
  const resumedEpochs = epochMetrics(second.messages);
  assert.deepEqual(resumedEpochs, epochMetrics(uninterrupted.messages).slice(-resumedEpochs.length));
  // Checkpoints only move forward, across both attempts.
  const steps = [...checkpointSteps(first), ...checkpointSteps(second.messages)];
  assert.ok(
    steps.every((s, i) => i === 0 || s > steps[i - 1]),
    `checkpoint steps ${steps.join(', ')}`,
  );
  assert.deepEqual((await readdir(task.checkpointsDir)).length, steps.length);
  return { stopped, first, second: second.messages };
}

test('paused mid-epoch and resumed, a job ends exactly like its uninterrupted twin (adam, cosine schedule, mid-epoch checkpoints)', async () => {
  const spec: JobSpec = {
    ...trainSpec({ epochs: 2, batchSize: 16, seed: 5, optimizer: { name: 'adam', learningRate: 0.002 }, lrSchedule: { kind: 'cosine' } }),
    checkpoint: { everySteps: 50 },
  };
  const steps = Math.ceil(1500 / 16);
  // Paused at epoch 2's first checkpoint: progress, throttled by time, may not come before an epoch this short ends.
  const { stopped, second } = await twins(
    'pause',
    spec,
    { train, validation, test: test1k },
    'pause',
    (m) => m.type === 'checkpoint' && m.epoch === 2 && m.step < 2 * steps,
  );
  assert.ok(stopped.outcome === 'cancelled');
  assert.equal(stopped.stoppedAt.epoch, 2);
  const inEpoch = stopped.stoppedAt.step - steps;
  const log = second.find((m) => m.type === 'log');
  assert.ok(log?.type === 'log');
  assert.equal(
    log.message,
    `resuming from checkpoint epoch-0002-step-${String(stopped.stoppedAt.step).padStart(8, '0')}: epoch 2 of 2, step ${inEpoch} of ${steps} (step ${stopped.stoppedAt.step} of ${2 * steps} overall)`,
  );
  const progress = second.find((m) => m.type === 'progress');
  assert.ok(progress?.type === 'progress' && progress.progress.epoch === 2 && progress.progress.step > inEpoch, 'it went on from there');
});

test('a crash loses only the steps since the last checkpoint: DANN with momentum SGD, resumed from a mid-epoch checkpoint', async () => {
  const spec: JobSpec = {
    type: 'domain_adaptation',
    model: { architecture: { kind: 'mlp', hidden: [32], activation: 'relu' } },
    method: { kind: 'dann', hiddenUnits: 16 },
    data: { source: 'train', target: 'target', targetTest: 'test' },
    hyperparameters: { epochs: 2, batchSize: 50, seed: 3, optimizer: { name: 'momentum', learningRate: 0.01 } },
    checkpoint: { everySteps: 7 },
  };
  const task = makeTask(root, 'crash', spec, { train, target, targetTest: test1k });
  const uninterrupted = recorder();
  const whole = await runTraining(task, uninterrupted.report);
  const weights = await readFile(path.join(task.modelDir, 'weights.bin'));
  // What a process killed after step 35 leaves behind: the checkpoints up to it, no model.
  for (const name of await readdir(task.checkpointsDir)) {
    if (Number(name.split('-step-')[1]) > 35) await rm(path.join(task.checkpointsDir, name), { recursive: true });
  }
  await rm(task.modelDir, { recursive: true });
  const state = JSON.parse(await readFile(path.join(task.checkpointsDir, 'epoch-0002-step-00000035', 'state.json'), 'utf8'));
  assert.deepEqual(Object.keys(state.sums.signals).sort(), ['domainAccuracy', 'domainLoss', 'grlLambda']);
  assert.deepEqual(
    state.method.weights.map((w: { name: string }) => w.name),
    ['dann/hidden/kernel', 'dann/hidden/bias', 'dann/domain/kernel', 'dann/domain/bias'],
  );

  const again = recorder();
  const resumed = await runTraining(task, again.report);
  assert.equal(tf.memory().numTensors, baseline);
  assert.ok(whole.outcome === 'succeeded' && resumed.outcome === 'succeeded');
  assert.deepEqual(learned(resumed.metrics), learned(whole.metrics));
  assert.ok((await readFile(path.join(task.modelDir, 'weights.bin'))).equals(weights), 'the saved weights are the same bytes');
  assert.deepEqual(epochMetrics(again.messages), epochMetrics(uninterrupted.messages).slice(1));
  assert.deepEqual(checkpointSteps(again.messages), [42, 49, 56, 60]);
  assert.ok(again.messages.some((m) => m.type === 'log' && /^resuming from checkpoint epoch-0002-step-00000035: epoch 2 of 2, step 5 of 30/.test(m.message)));
});

test('with augmentation of source and target batches, a paused DANN job still ends bit for bit like its twin', async () => {
  const images = (d: DatasetFiles): DatasetFiles => ({ ...d, imageShape: [28, 28, 1] });
  const spec: JobSpec = {
    type: 'domain_adaptation',
    model: { architecture: { kind: 'mlp', hidden: [32], activation: 'relu' } },
    method: { kind: 'dann', hiddenUnits: 16 },
    data: { source: 'train', target: 'target', targetTest: 'test' },
    hyperparameters: {
      epochs: 2,
      batchSize: 50,
      seed: 4,
      optimizer: { name: 'momentum', learningRate: 0.01 },
      augment: { flip: 'horizontal', rotate: 10, translate: 0.1, scale: 0.1, brightness: 0.1, contrast: 0.2, noise: 0.02, apply: ['source', 'target'] },
    },
    checkpoint: { everySteps: 7 },
  };
  const { stopped } = await twins(
    'augmented',
    spec,
    { train: images(train), target: images(target), targetTest: test1k },
    'pause',
    (m) => m.type === 'checkpoint' && m.epoch === 2,
  );
  assert.ok(stopped.outcome === 'cancelled' && stopped.stoppedAt.epoch === 2);
});

test('handed back at the end of an epoch, a job with early stopping and rmsprop ends like its twin', async () => {
  const hp = trainSpec({ epochs: 3, batchSize: 64, seed: 2, optimizer: { name: 'rmsprop', learningRate: 0.002 }, earlyStopping: { patience: 1 } });
  const spec = { ...hp, data: { train: 'train', validation: 'validation', test: 'test' } };
  await twins('handback', spec, { train, validation, test: test1k }, 'shutdown', (m) => m.type === 'checkpoint' && m.epoch === 1);
});

test('limits.maxRuntimeSeconds stops an attempt for good, with a checkpoint to show for it', async () => {
  const { messages, report } = recorder();
  // As many steps as the spec allows (1000 epochs of 1500 batches of one), each a product with
  // 100,352 multiply-adds: far more than a second of work on any machine, however fast its step.
  const epochs = MAX_EPOCHS;
  const task = makeTask(root, 'slow', { ...trainSpec({ epochs, batchSize: 1 }, [128]), limits: { maxRuntimeSeconds: 1 } }, { train });
  let caught: unknown;
  await runTraining(task, report).catch((err) => (caught = err));
  assert.equal(tf.memory().numTensors, baseline);
  assert.ok(caught instanceof TrainingError, String(caught));
  assert.equal(caught.code, 'max_runtime');
  assert.equal(caught.param, '/limits/maxRuntimeSeconds');
  assert.equal(caught.name, 'UnrecoverableError', 'not retried');
  // Where the second ran out depends on the machine's speed; what the limit guarantees does not:
  // it stopped before the end, at a step that a checkpoint holds, and every checkpoint is kept.
  const at = new RegExp(
    `ran longer than limits\\.maxRuntimeSeconds \\(1 s\\) and stopped in epoch (\\d+) at step (\\d+) of ${epochs * 1500}; its checkpoint is kept`,
  ).exec(caught.message);
  assert.ok(at, caught.message);
  const [epoch, step] = [Number(at[1]), Number(at[2])];
  assert.ok(step > 0 && step < epochs * 1500 && epoch === Math.ceil(step / 1500), `stopped at epoch ${epoch}, step ${step}`);
  const saved = messages.flatMap((m) => (m.type === 'checkpoint' ? [m] : []));
  assert.equal(saved.at(-1)?.step, step, 'the last checkpoint is the step it stopped at');
  assert.deepEqual((await readdir(task.checkpointsDir)).sort(), saved.map((m) => path.basename(m.path)).sort());
});

test('an unreadable newest checkpoint is passed over with a warning; one from another setup fails the job', async () => {
  const spec = trainSpec({ epochs: 2, batchSize: 100 });
  const task = makeTask(root, 'damaged', spec, { train });
  const done: TrainingResult = await runTraining(task, () => {});
  assert.equal(done.outcome, 'succeeded');
  const [older, newest] = (await readdir(task.checkpointsDir)).sort();
  await writeFile(path.join(task.checkpointsDir, newest, 'state.json'), '{ "trunc');
  const { messages, report } = recorder();
  assert.equal((await runTraining(task, report)).outcome, 'succeeded');
  const logs = messages.flatMap((m) => (m.type === 'log' ? [m] : []));
  assert.equal(logs[0]?.level, 'warn');
  assert.match(
    logs[0].message,
    new RegExp(
      `^checkpoint ${newest} cannot be read: state\\.json is not valid JSON \\(.+\\); expected a complete JSON document\\. Passed over: trying the checkpoint before it$`,
    ),
  );
  assert.match(logs[1].message, new RegExp(`resuming from checkpoint ${older}: epoch 1 of 2`));

  const other = makeTask(root, 'damaged', trainSpec({ epochs: 2, batchSize: 50 }), { train });
  await assert.rejects(
    runTraining(other, () => {}),
    (err: unknown) => {
      assert.ok(err instanceof TrainingError);
      assert.equal(err.code, 'checkpoint_incompatible');
      assert.match(err.message, /it was written with stepsPerEpoch 15, the job has 30/);
      return true;
    },
  );
  assert.equal(tf.memory().numTensors, baseline);
});

/** What an object store that kept part of an object, or a full disk, leaves: the file's first half. */
async function cutShort(file: string): Promise<void> {
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, bytes.length >> 1));
}

test('a checkpoint with a file cut short is passed over, naming the file: resumed from the one before it, or from the start', async () => {
  const task = makeTask(root, 'cut-short', trainSpec({ epochs: 2, batchSize: 100 }), { train });
  const whole = await runTraining(task, () => {});
  assert.equal(whole.outcome, 'succeeded');
  const weights = await readFile(path.join(task.modelDir, 'weights.bin'));
  const [older, newest] = (await readdir(task.checkpointsDir)).sort();
  const warnings = (messages: TrainingMessage[]) => messages.flatMap((m) => (m.type === 'log' && m.level === 'warn' ? [m.message] : []));
  const endsLikeWhole = async (result: TrainingResult) => {
    assert.ok(result.outcome === 'succeeded' && whole.outcome === 'succeeded');
    assert.deepEqual(learned(result.metrics), learned(whole.metrics));
    assert.ok((await readFile(path.join(task.modelDir, 'weights.bin'))).equals(weights), 'the saved weights are the same bytes');
    assert.equal(tf.memory().numTensors, baseline);
  };

  await cutShort(path.join(task.checkpointsDir, newest, 'model.json'));
  const second = recorder();
  await endsLikeWhole(await runTraining(task, second.report));
  const [warning, ...more] = warnings(second.messages);
  assert.match(
    warning,
    new RegExp(
      `^checkpoint ${newest} cannot be read: model\\.json is not valid JSON \\(.+\\); expected a complete JSON document\\. Passed over: trying the checkpoint before it$`,
    ),
  );
  assert.deepEqual(more, []);
  assert.ok(second.messages.some((m) => m.type === 'log' && m.message.startsWith(`resuming from checkpoint ${older}: epoch 1 of 2, step 15 of 15`)));
  assert.deepEqual(checkpointSteps(second.messages), [30], 'epoch 2 trained again, its checkpoint written anew');
  JSON.parse(await readFile(path.join(task.checkpointsDir, newest, 'model.json'), 'utf8'));

  // The binary files are checked against the tensors their JSON lists: 784·32 + 32 + 32·10 + 10
  // floats of weights, as many momentum slots and the optimizer's int32 iteration count.
  await cutShort(path.join(task.checkpointsDir, newest, 'optimizer.bin'));
  await cutShort(path.join(task.checkpointsDir, older, 'weights.bin'));
  const third = recorder();
  await endsLikeWhole(await runTraining(task, third.report));
  assert.deepEqual(warnings(third.messages), [
    `checkpoint ${newest} cannot be read: optimizer.bin has 50902 bytes; expected 101804, the tensors state.json lists. Passed over: trying the checkpoint before it`,
    `checkpoint ${older} cannot be read: weights.bin has 50900 bytes; expected 101800, the tensors model.json lists. Passed over: there is none before it, so training starts from the beginning`,
  ]);
  assert.ok(!third.messages.some((m) => m.type === 'log' && m.message.startsWith('resuming')));
  assert.deepEqual(checkpointSteps(third.messages), [15, 30]);
});

test("a checkpoint that cannot be passed over, the best epoch's that early stopping keeps, fails the job for good naming its file", async () => {
  // no later epoch improves by a million: epoch 1 stays the best, and patience 1 stops after epoch 2
  const spec: JobSpec = {
    ...trainSpec({ epochs: 3, batchSize: 100, earlyStopping: { patience: 1, minDelta: 1e6 } }),
    data: { train: 'train', validation: 'validation' },
  };
  const task = makeTask(root, 'best-cut-short', spec, { train, validation });
  const report = async (m: TrainingMessage) => {
    if (m.type === 'checkpoint' && m.epoch === 2) await cutShort(path.join(task.checkpointsDir, 'epoch-0001-step-00000015', 'model.json'));
  };
  await assert.rejects(runTraining(task, report), (err: unknown) => {
    assert.ok(err instanceof TrainingError, String(err));
    assert.equal(err.code, 'checkpoint_unreadable');
    assert.equal(err.name, 'UnrecoverableError', 'not retried: a retry would read the same bytes');
    assert.match(
      err.message,
      /^early stopping keeps the weights of epoch 1, but checkpoint epoch-0001-step-00000015 cannot be read: model\.json is not valid JSON \(.+\); expected a complete JSON document$/,
    );
    return true;
  });
  assert.equal(tf.memory().numTensors, baseline);
});
