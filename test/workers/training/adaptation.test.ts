/** Every domain-adaptation method end to end through runTraining: its signal, source and target accuracy, its report. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import type { JobSpec } from '../../../src/schemas/job.js';
import type { AdaptationMethod } from '../../../src/schemas/methods.js';
import { VALIDATOR_NAMES } from '../../../src/jobs/validators.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { loadModel, saveModel } from '../../../workers/training/models.js';
import { TrainingError, type DatasetFiles, type TrainingMessage } from '../../../src/jobs/task.js';
import { runTraining } from '../../../workers/training/training-loop.js';
import { makeTask, mnistDataset, recorder, tempDir, trainSpec } from './fixtures.js';

let root: string;
let source: DatasetFiles;
let target: DatasetFiles;
let targetTest: DatasetFiles;
let bases: string[];
let baseline: number;

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
  root = await tempDir();
  source = await mnistDataset(root, 'source', 'train', 0, 800);
  // The method's mechanics, not a domain gap, are under test here; the benchmark measures the gap.
  target = await mnistDataset(root, 'target', 'train', 30000, 600);
  targetTest = await mnistDataset(root, 'target-test', 't10k', 0, 300);
  bases = [];
  for (const seed of [1, 2]) {
    const task = makeTask(root, `base-${seed}`, trainSpec({ epochs: 1, batchSize: 32, seed }), { train: source });
    assert.equal((await runTraining(task, () => {})).outcome, 'succeeded');
    bases.push(task.modelDir);
  }
  baseline = tf.memory().numTensors;
});

function adaptation(method: AdaptationMethod, over: Partial<JobSpec> = {}): JobSpec {
  return {
    type: 'domain_adaptation',
    model: { architecture: { kind: 'mlp', hidden: [32], activation: 'relu' } },
    method,
    data: { source: 'source', target: 'target', targetTest: 'target-test' },
    hyperparameters: { epochs: 1, batchSize: 40, seed: 1, optimizer: { name: 'adam', learningRate: 0.005 } },
    ...over,
  };
}

async function adapt(name: string, spec: JobSpec, extra = {}) {
  const { messages, report } = recorder();
  const task = makeTask(root, name, spec, { train: source, target, targetTest }, extra);
  const result = await runTraining(task, report);
  assert.equal(tf.memory().numTensors, baseline, `${name} freed every tensor`);
  assert.ok(result.outcome === 'succeeded');
  const epoch = messages.find((m): m is Extract<TrainingMessage, { type: 'metrics' }> => m.type === 'metrics')!.metrics;
  return { task, result, epoch, messages };
}

const SIGNALS: [AdaptationMethod, string[]][] = [
  [{ kind: 'dann', hiddenUnits: 16 }, ['domainAccuracy', 'domainLoss', 'grlLambda']],
  [{ kind: 'coral', weight: 10 }, ['coral']],
  [{ kind: 'mmd', kernels: 3 }, ['mmd']],
  [{ kind: 'pseudo_label', threshold: 0.8 }, ['pseudoLabelLoss', 'pseudoLabelRate']],
  [{ kind: 'cdan', hiddenUnits: 16 }, ['domainAccuracy', 'domainLoss', 'grlLambda']],
  [{ kind: 'mcc' }, ['classConfusion']],
];

for (const [method, signals] of SIGNALS) {
  test(`${method.kind}: per-epoch ${signals.join(', ')}; final source and target accuracy with the target's report`, async () => {
    const { result, epoch } = await adapt(method.kind, adaptation(method));
    assert.ok(result.outcome === 'succeeded');
    assert.deepEqual(
      Object.keys(epoch)
        .filter((k) => signals.includes(k))
        .sort(),
      signals,
    );
    for (const s of signals) assert.ok(Number.isFinite(epoch[s]), `${s} = ${epoch[s]}`);
    // One short epoch: well above chance (0.1) is all that is asked here; the benchmark measures quality.
    assert.ok(result.metrics.sourceAccuracy > 0.3 && result.metrics.targetAccuracy > 0.3, JSON.stringify(result.metrics));
    assert.ok(result.metrics.sourceLoss > 0 && result.metrics.targetLoss > 0);
    assert.equal(
      result.report!.confusionMatrix.flat().reduce((a, b) => a + b, 0),
      300,
      "the report is the target test set's",
    );
    if (method.kind === 'dann' || method.kind === 'cdan') {
      assert.ok(epoch.grlLambda > 0 && epoch.grlLambda < 1, 'the reversal ramps up over training');
      assert.ok(epoch.domainAccuracy > 0 && epoch.domainAccuracy <= 1);
    }
    if (method.kind === 'pseudo_label') assert.ok(epoch.pseudoLabelRate >= 0 && epoch.pseudoLabelRate <= 1);
  });
}

test('adabn: batch-norm statistics of the target set in the saved model', async () => {
  const spec = adaptation({ kind: 'adabn' }, { model: { architecture: { kind: 'mlp', hidden: [32], batchNorm: true } } });
  const { task, result } = await adapt('adabn', spec);
  assert.equal(result.metrics.adaptedBatchNormLayers, 1);
  assert.ok(result.metrics.targetAccuracy > 0.6);
  const { model } = await loadModel(task.modelDir);
  const mean = model
    .getLayer('dense_1_bn')
    .weights.find((w) => w.originalName.endsWith('moving_mean'))!
    .read()
    .dataSync();
  const checkpoint = await loadModel(path.join(task.checkpointsDir, 'epoch-0001-step-00000020'));
  const trained = checkpoint.model
    .getLayer('dense_1_bn')
    .weights.find((w) => w.originalName.endsWith('moving_mean'))!
    .read()
    .dataSync();
  assert.notDeepEqual(mean, trained, 'the statistics were recomputed after training');
  model.dispose();
  checkpoint.model.dispose();
  // Training itself is plain source training: no target batch joined a step (nor its batch-norm statistics).
  const plain = makeTask(root, 'adabn-twin', { ...spec, type: 'train', method: undefined, data: { train: 'source' } }, { train: source });
  assert.equal((await runTraining(plain, () => {})).outcome, 'succeeded');
  const weightsAt = (dir: string) => readFile(path.join(dir, 'epoch-0001-step-00000020', 'weights.bin'));
  assert.ok((await weightsAt(task.checkpointsDir)).equals(await weightsAt(plain.checkpointsDir)));

  // an architecture without batch norm breaks the spec rule the API checks, in its words
  const without = adaptation({ kind: 'adabn' });
  await assert.rejects(
    runTraining(makeTask(root, 'adabn-no-bn', without, { train: source, target }), () => {}),
    (err: unknown) => {
      return (
        err instanceof TrainingError &&
        err.code === 'invalid_spec' &&
        err.param === '/model/architecture/batchNorm' &&
        /must be true for method adabn/.test(err.message)
      );
    },
  );
  // a base model without batch norm passes the spec rules; the method refuses it
  const plainBase = tf.sequential({ layers: [tf.layers.dense({ inputShape: [784], units: 10 })] });
  const baseDir = path.join(root, 'adabn-plain-base');
  await saveModel(plainBase, baseDir);
  plainBase.dispose();
  const onBase = makeTask(
    root,
    'adabn-on-base',
    { ...without, model: { base: 'plain' } },
    { train: source, target },
    { baseModelDir: baseDir, baseModelId: 'plain' },
  );
  await assert.rejects(
    runTraining(onBase, () => {}),
    (err: unknown) => {
      return err instanceof TrainingError && err.code === 'invalid_spec' && err.param === '/method/kind' && /no BatchNormalization layer/.test(err.message);
    },
  );
  assert.equal(tf.memory().numTensors, baseline);
});

test('multi_source starts from the mean of its bases and pulls toward each of them', async () => {
  const spec = adaptation(
    { kind: 'multi_source', lambda: 50 },
    { model: { bases: ['base-1', 'base-2'] }, data: { source: 'source', targetTest: 'target-test' } },
  );
  const { task, result, epoch, messages } = await adapt('multi', spec, { baseModelDirs: bases, baseModelIds: ['base-1', 'base-2'] });
  assert.ok(messages.some((m) => m.type === 'log' && m.message === 'starting from the mean of the 2 base models'));
  assert.ok(epoch.penalty > 0);
  assert.ok(result.metrics.targetAccuracy > 0.6);
  const json = JSON.parse(await readFile(path.join(task.modelDir, 'model.json'), 'utf8'));
  assert.deepEqual(json.userDefinedMetadata.tfjsAdapt.baseModelIds, ['base-1', 'base-2']);
  assert.equal(json.userDefinedMetadata.tfjsAdapt.method, 'multi_source');
});

test("with targetLabelled, the target's labels join the loss and its cross-entropy is reported", async () => {
  const spec = adaptation({ kind: 'coral' }, { data: { source: 'source', target: 'target', targetTest: 'target-test', targetLabelled: true } });
  const labelled = await adapt('labelled', spec);
  const plain = await adapt('unlabelled', adaptation({ kind: 'coral' }));
  // cross-entropy of the target batches: positive, and no worse than a model that knows nothing would do many times over
  assert.ok(labelled.epoch.targetLoss > 0 && labelled.epoch.targetLoss < 3 * Math.log(10), `targetLoss ${labelled.epoch.targetLoss}`);
  assert.equal(plain.epoch.targetLoss, undefined, 'without targetLabelled no target cross-entropy is computed');
  // the same seed, data and method: only the target's labels in the loss tell the two runs apart
  const weights = (task: { modelDir: string }) => readFile(path.join(task.modelDir, 'weights.bin'));
  assert.ok(!(await weights(labelled.task)).equals(await weights(plain.task)), 'the target labels changed what was learnt');
});

test('a method that needs the target domain without data.target, and an unknown feature layer, fail with pointers', async () => {
  const noTarget = makeTask(root, 'no-target', adaptation({ kind: 'mmd' }), { train: source });
  await assert.rejects(
    runTraining(noTarget, () => {}),
    (err: unknown) => err instanceof TrainingError && err.param === '/data/target',
  );
  const misnamed = makeTask(root, 'misnamed', adaptation({ kind: 'coral', featureLayer: 'dense_9' }), { train: source, target });
  await assert.rejects(
    runTraining(misnamed, () => {}),
    (err: unknown) => {
      return (
        err instanceof TrainingError && err.param === '/method/featureLayer' && /has no layer named 'dense_9'; its layers are dense_1, logits/.test(err.message)
      );
    },
  );
  assert.equal(tf.memory().numTensors, baseline);
});

test('each epoch reports the label-free validators; early stopping keeps the best epoch by one, in its direction', async () => {
  const validation = await mnistDataset(root, 'validation', 'train', 20000, 200);
  for (const monitor of ['entropy', 'im'] as const) {
    const spec = adaptation(
      { kind: 'coral' },
      {
        data: { source: 'source', target: 'target', targetTest: 'target-test', validation: 'validation' },
        hyperparameters: {
          epochs: 3,
          batchSize: 40,
          seed: 1,
          optimizer: { name: 'adam', learningRate: 0.005 },
          earlyStopping: { patience: 3, monitor },
          validatorSample: 100,
        },
      },
    );
    const { messages, report } = recorder();
    const result = await runTraining(makeTask(root, `validators-${monitor}`, spec, { train: source, target, targetTest, validation }), report);
    assert.ok(result.outcome === 'succeeded');
    assert.equal(tf.memory().numTensors, baseline, 'the validators freed every tensor');
    const epochs = messages.filter((m): m is Extract<TrainingMessage, { type: 'metrics' }> => m.type === 'metrics').map((m) => m.metrics);
    assert.equal(epochs.length, 3);
    for (const m of epochs) {
      for (const name of VALIDATOR_NAMES) assert.ok(Number.isFinite(m[name]), `${name} = ${m[name]}`);
      assert.ok(m.entropy >= 0 && m.entropy <= Math.log(10) + 1e-6 && m.im <= Math.log(10) + 1e-6 && m.snd >= 0 && m.dev > 0);
      assert.ok(m.mixval >= 0 && m.mixval <= 1);
      assert.equal(m.errorBound, 1 - m.valAccuracy + Math.max(0, 2 * m.linearDomainAccuracy - 1));
      // its source term's standard error, over the 200 validation examples
      assert.ok(Math.abs(m.errorBoundStandardError - Math.sqrt(((1 - m.valAccuracy) * m.valAccuracy) / 200)) < 1e-12);
    }
    const values = epochs.map((m) => m[monitor]);
    const best = monitor === 'entropy' ? Math.min(...values) : Math.max(...values);
    assert.equal(result.metrics.bestEpoch, values.indexOf(best) + 1, `${monitor} by epoch: ${values.join(', ')}`);
  }
});
