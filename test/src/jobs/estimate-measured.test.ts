import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeDatasetFiles } from '../../../src/artifacts/dataset-files.js';
import { estimateJob } from '../../../src/jobs/estimate.js';
import type { DatasetFiles, TrainingTask } from '../../../src/jobs/task.js';
import type { JobSpec } from '../../../src/schemas/job.js';
import type { Measured } from './measure-child.js';
import { nsfwMobileNetV2, writeModelFiles } from '../../helpers/nsfwjs-model.js';

/**
 * The estimate against what a real training child holds: each job runs in a child process of
 * its own (runTraining on the wasm backend, as the worker runs it) that records the peak of
 * tf.memory().numBytes at every tensor allocation. What the estimate says a step holds in
 * tensors (weights, optimizer state, the step's working memory) must be within 2x of it.
 */
const CHILD = new URL('./measure-child.js', import.meta.url);
let root: string;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tfjs-adapt-estimate-'));
});
after(() => rm(root, { recursive: true, force: true }));

/** `count` random examples of `shape` in 10 classes, as a stored dataset. */
async function dataset(id: string, count: number, shape: number[], seed: number): Promise<DatasetFiles> {
  const size = shape.reduce((a, b) => a * b, 1);
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const features = Uint8Array.from({ length: count * size }, () => next() >>> 24);
  const labels = Int32Array.from({ length: count }, () => next() % 10);
  const dir = path.join(root, id);
  await writeDatasetFiles(dir, features, labels);
  return {
    id,
    dir,
    numExamples: count,
    featureShape: shape,
    featureDtype: 'uint8',
    numClasses: 10,
    classes: [...'0123456789'],
    preprocessing: { scale: 1 / 255, offset: 0 },
  };
}

function task(id: string, spec: JobSpec, data: TrainingTask['data'], base?: string): TrainingTask {
  return {
    jobId: `job_${id}`,
    spec,
    data,
    ...(base ? { baseModelDir: base, baseModelId: 'mdl_base', featuresRoot: path.join(root, 'features') } : {}),
    modelDir: path.join(root, 'models', id),
    modelId: `mdl_${id}`,
    checkpointsDir: path.join(root, 'checkpoints', id),
  };
}

function measure(t: TrainingTask): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [JSON.stringify(t)], {
      execArgv: [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { ...process.env, TFJS_BACKEND: 'wasm' },
    });
    let answer: Measured | undefined;
    child.once('message', (m) => (answer = m as Measured));
    child.once('error', reject);
    child.once('exit', (code) => (answer ? resolve(answer) : reject(new Error(`the measuring child exited with code ${code} without an answer`))));
  });
}

const hp = (batchSize: number, optimizer: JobSpec['hyperparameters'] extends infer H ? (H extends { optimizer: infer O } ? O : never) : never) => ({
  epochs: 1,
  batchSize,
  seed: 3,
  optimizer,
});
const MiB = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

/** Runs `t`, compares, and returns the figures for the report. */
async function within2x(name: string, t: TrainingTask, base?: { modelTopology: unknown; weightsManifest?: unknown }) {
  const estimate = estimateJob({ spec: t.spec, data: t.data, ...(base ? { base } : {}) });
  const measured = await measure(t);
  assert.equal(measured.outcome, 'succeeded');
  assert.equal(measured.backend, 'wasm');
  const claimed = estimate.parameterBytes + estimate.optimizerStateBytes + estimate.activationBytes;
  const ratio = claimed / measured.peakTensorBytes;
  console.log(
    `${name}: estimated ${MiB(claimed)} in tensors, measured peak ${MiB(measured.peakTensorBytes)} (ratio ${ratio.toFixed(2)}), wasm heap grew ${MiB(measured.wasmHeapGrowth)}`,
  );
  assert.ok(ratio >= 0.5 && ratio <= 2, `${name}: estimate ${claimed} bytes vs measured peak ${measured.peakTensorBytes} bytes: ratio ${ratio}`);
  // The wasm heap is where those tensors live: it must have room for the measured peak, and the estimate must not be far below it either.
  assert.ok(
    claimed * 2 >= measured.wasmHeapGrowth - 16 * 2 ** 20,
    `${name}: the wasm heap grew by ${measured.wasmHeapGrowth} bytes, more than twice the estimate ${claimed} (and its 16 MiB growth step)`,
  );
  return { estimate, measured };
}

describe('the cost estimate against a training child', () => {
  let flat: DatasetFiles;
  let images: DatasetFiles;
  let target: DatasetFiles;
  let mlpDir: string;

  before(async () => {
    flat = await dataset('flat', 512, [784], 1);
    images = await dataset('images', 256, [28, 28, 1], 2);
    target = await dataset('target', 512, [784], 3);
  });

  test('MLP with adam', async () => {
    const t = task(
      'mlp',
      {
        type: 'train',
        model: { architecture: { kind: 'mlp', hidden: [512, 256] } },
        data: { train: 'flat' },
        hyperparameters: hp(256, { name: 'adam', learningRate: 0.001 }),
      },
      { train: flat },
    );
    await within2x('mlp', t);
    mlpDir = t.modelDir;
  });

  test('CNN with momentum', async () => {
    const spec: JobSpec = {
      type: 'train',
      model: { architecture: { kind: 'cnn', hidden: [64], filters: [16, 32] } },
      data: { train: 'images' },
      hyperparameters: hp(64, { name: 'momentum', learningRate: 0.01 }),
    };
    await within2x('cnn', task('cnn', spec, { train: images }));
  });

  test('CNN with batch norm', async () => {
    const spec: JobSpec = {
      type: 'train',
      model: { architecture: { kind: 'cnn', hidden: [64], filters: [8, 16], batchNorm: true } },
      data: { train: 'images' },
      hyperparameters: hp(64, { name: 'sgd', learningRate: 0.01 }),
    };
    const t = task('cnn-bn', spec, { train: images });
    const { estimate } = await within2x('cnn-batchnorm', t);
    // the model it saved, read back from its model.json, is the same model to the estimate
    const saved = JSON.parse(await readFile(path.join(t.modelDir, 'model.json'), 'utf8'));
    const finetune: JobSpec = { ...spec, type: 'finetune', model: { base: 'mdl_cnn-bn' }, strategy: { kind: 'full' } };
    const fromTopology = estimateJob({ spec: finetune, data: { train: images }, base: saved });
    assert.equal(fromTopology.parameters, estimate.parameters);
    assert.equal(fromTopology.activationBytes, estimate.activationBytes);
    assert.equal(fromTopology.flops, estimate.flops);
  });

  test('DANN, target batches and domain classifier included', async () => {
    const spec: JobSpec = {
      type: 'domain_adaptation',
      model: { architecture: { kind: 'mlp', hidden: [256] } },
      method: { kind: 'dann', hiddenUnits: 256 },
      data: { source: 'flat', target: 'target' },
      hyperparameters: hp(256, { name: 'adam', learningRate: 0.001 }),
    };
    await within2x('dann', task('dann', spec, { train: flat, target }));
  });

  test('MMD, whose kernel matrices grow with the square of the batch', async () => {
    const spec: JobSpec = {
      type: 'domain_adaptation',
      model: { architecture: { kind: 'mlp', hidden: [64] } },
      method: { kind: 'mmd' },
      data: { source: 'flat', target: 'target' },
      hyperparameters: hp(512, { name: 'sgd', learningRate: 0.01 }),
    };
    await within2x('mmd', task('mmd', spec, { train: flat, target }));
  });

  test('a stored model, read from its model.json (finetune with a new head)', async () => {
    const base = JSON.parse(await readFile(path.join(mlpDir, 'model.json'), 'utf8'));
    const spec: JobSpec = {
      type: 'finetune',
      model: { base: 'mdl_mlp' },
      strategy: { kind: 'l2sp', newHead: true },
      data: { train: 'flat' },
      hyperparameters: hp(128, { name: 'adam', learningRate: 0.001 }),
    };
    const { estimate } = await within2x('finetune', task('finetune', spec, { train: flat }, mlpDir), base);
    assert.equal(estimate.parameters, 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
  });

  describe('a frozen MobileNetV2 (the nsfwjs Keras model, 224x224x3) with a new head, at batch 4', () => {
    const mobilenet = nsfwMobileNetV2(1);
    let dir: string;
    let photos: DatasetFiles;
    before(async () => {
      dir = path.join(root, 'mobilenet');
      await writeModelFiles(mobilenet, dir);
      // two steps at batch 4, and two inference batches (6 of these images fit one): each peak is met, at a third less work than 12
      photos = await dataset('photos', 8, [224, 224, 3], 4);
    });
    const spec = (over: Partial<JobSpec> = {}): JobSpec => ({
      type: 'finetune',
      model: { base: 'mdl_base' },
      strategy: { kind: 'freeze', newHead: true, featureLayer: 'flatten_1' },
      data: { train: 'photos' },
      hyperparameters: hp(4, { name: 'adam', learningRate: 0.001 }),
      ...over,
    });

    test('on cached features: the frozen base runs once per example, in inference batches, and keeps nothing for the steps', async () => {
      await within2x('mobilenet-cached', task('mobilenet-cached', spec(), { train: photos }, dir), mobilenet.modelJson);
    });

    test('without the cache (augmented inputs): the frozen base runs at every step in a tidy of its own, released before the head trains', async () => {
      const augmented = spec({ hyperparameters: { ...hp(4, { name: 'adam', learningRate: 0.001 }), augment: { brightness: 0.1 } } });
      await within2x('mobilenet-augmented', task('mobilenet-augmented', augmented, { train: photos }, dir), mobilenet.modelJson);
    });
  });
});
