/** Shared by the worker tests: small real MNIST datasets and training tasks in temp dirs. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import type { Hyperparameters, JobSpec } from '../../../src/schemas/job.js';
import { readIdx, writeDatasetFiles } from '../../../workers/training/data.js';
import type { DatasetFiles, TrainingMessage, TrainingTask } from '../../../src/jobs/task.js';
import { MNIST_DIR } from './mnist-dir.js';

export { MNIST_DIR };

// Tests run on wasm, the backend this machine uses in production, unless told otherwise.
process.env.TFJS_BACKEND ||= 'wasm';

const tempDirs: string[] = [];
// Registered here, at the top level of the file, because an after() inside a before() hook
// would run as soon as that hook ends.
after(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A temp dir removed when the test file ends. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tfjs-adapt-test-'));
  tempDirs.push(dir);
  return dir;
}

const splits = new Map<string, Promise<{ images: Uint8Array; labels: Uint8Array }>>();

function mnist(split: 'train' | 't10k') {
  let loaded = splits.get(split);
  if (loaded === undefined) {
    loaded = (async () => ({
      images: (await readIdx(path.join(MNIST_DIR, `${split}-images-idx3-ubyte`))).data as Uint8Array,
      labels: (await readIdx(path.join(MNIST_DIR, `${split}-labels-idx1-ubyte`))).data as Uint8Array,
    }))();
    splits.set(split, loaded);
  }
  return loaded;
}

/** MNIST examples [start, start + count) of a split, written as a dataset in `root/id`. */
export async function mnistDataset(root: string, id: string, split: 'train' | 't10k', start: number, count: number): Promise<DatasetFiles> {
  const { images, labels } = await mnist(split);
  const dir = path.join(root, id);
  await writeDatasetFiles(dir, images.slice(start * 784, (start + count) * 784), Int32Array.from(labels.subarray(start, start + count)));
  return {
    id,
    dir,
    numExamples: count,
    featureShape: [784],
    featureDtype: 'uint8',
    numClasses: 10,
    classes: Array.from({ length: 10 }, (_, i) => String(i)),
    preprocessing: { scale: 2 / 255, offset: -1 },
  };
}

/** The usual slices of a training-loop test, in a new temp dir (`root`, for the test's other datasets and tasks): 1500 to train on, 300 to validate, 500 to test. */
export async function mnistSplits(): Promise<{ root: string; train: DatasetFiles; validation: DatasetFiles; test: DatasetFiles }> {
  const root = await tempDir();
  return {
    root,
    train: await mnistDataset(root, 'train', 'train', 0, 1500),
    validation: await mnistDataset(root, 'validation', 'train', 50000, 300),
    test: await mnistDataset(root, 'test', 't10k', 0, 500),
  };
}

/**
 * The examples of `digits` among MNIST examples [start, start + count) of a split, relabelled
 * 0..k-1 in the order of `digits`: a task with other classes than the full set's.
 */
export async function mnistDigits(root: string, id: string, split: 'train' | 't10k', start: number, count: number, digits: number[]): Promise<DatasetFiles> {
  const { images, labels } = await mnist(split);
  const keep = Array.from({ length: count }, (_, i) => start + i).filter((i) => digits.includes(labels[i]));
  const features = new Uint8Array(keep.length * 784);
  keep.forEach((example, i) => features.set(images.subarray(example * 784, (example + 1) * 784), i * 784));
  const dir = path.join(root, id);
  await writeDatasetFiles(
    dir,
    features,
    Int32Array.from(keep, (i) => digits.indexOf(labels[i])),
  );
  return {
    id,
    dir,
    numExamples: keep.length,
    featureShape: [784],
    featureDtype: 'uint8',
    numClasses: digits.length,
    classes: digits.map(String),
    preprocessing: { scale: 2 / 255, offset: -1 },
  };
}

export function trainSpec(overrides: Partial<Hyperparameters> = {}, hidden = [32]): JobSpec {
  return {
    type: 'train',
    model: { architecture: { kind: 'mlp', hidden, activation: 'relu' } },
    data: { train: 'train' },
    hyperparameters: { epochs: 2, batchSize: 32, seed: 1, optimizer: { name: 'sgd', learningRate: 0.02, momentum: 0.9 }, ...overrides },
  };
}

/** A task whose outputs go to fresh directories under `root/name`. */
export function makeTask(root: string, name: string, spec: JobSpec, data: TrainingTask['data'], extra: Partial<TrainingTask> = {}): TrainingTask {
  return {
    jobId: `job-${name}`,
    spec,
    data,
    modelDir: path.join(root, name, 'model'),
    modelId: `model-${name}`,
    checkpointsDir: path.join(root, name, 'checkpoints'),
    ...extra,
  };
}

/** A report callback that records every message. */
export function recorder(): { messages: TrainingMessage[]; report: (m: TrainingMessage) => void } {
  const messages: TrainingMessage[] = [];
  return { messages, report: (m) => void messages.push(m) };
}
