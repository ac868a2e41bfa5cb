/**
 * One throughput measurement of our side, run by bench/run.ts in a fresh process so that every
 * run starts from the same state, like the Python peer it alternates with. Prints one JSON line.
 *
 *   node dist/bench/ours.js --model mlp|cnn --examples N --epochs E [--fit]
 *
 * Default: the real training loop (runTraining) on the first N MNIST training examples; the last
 * epoch's samples/s is the figure, earlier epochs warm up. `--fit` runs stock `model.fit` on the
 * same model and data instead, as the reference point the issue starts from.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import tf = require('@tensorflow/tfjs');
import type { JobSpec } from '../src/schemas/job.js';
import { selectBackend } from '../workers/training/backend.js';
import { Batcher, loadDataset } from '../workers/training/data.js';
import { buildModel } from '../workers/training/models.js';
import type { DatasetFiles, TrainingMessage, TrainingTask } from '../src/jobs/task.js';
import { runTraining } from '../workers/training/training-loop.js';
import { mnistTrain } from './mnist.js';
import { ARCHITECTURES, BATCH_SIZE, LEARNING_RATE, MOMENTUM, SEED, type BenchModel } from './recipes.js';

export interface OursResult {
  samplesPerSecond: number;
  /** every epoch's samples/s, the last one included: how the first ones warm up (the loop's runs only) */
  epochRates?: number[];
  epochSeconds: number;
  loss: number;
  backend: string;
}

function spec(model: BenchModel, train: DatasetFiles, epochs: number): JobSpec {
  return {
    type: 'train',
    model: { architecture: ARCHITECTURES[model] },
    data: { train: train.id },
    hyperparameters: { epochs, batchSize: BATCH_SIZE, seed: SEED, optimizer: { name: 'sgd', learningRate: LEARNING_RATE, momentum: MOMENTUM } },
  };
}

async function loop(model: BenchModel, train: DatasetFiles, epochs: number, work: string): Promise<OursResult> {
  const task: TrainingTask = {
    jobId: `bench-${model}`,
    spec: spec(model, train, epochs),
    data: { train },
    modelDir: path.join(work, 'model'),
    modelId: 'bench-model',
    checkpointsDir: path.join(work, 'checkpoints'),
  };
  const epochMetrics: Record<string, number>[] = [];
  const result = await runTraining(task, (m: TrainingMessage) => void (m.type === 'metrics' && epochMetrics.push(m.metrics)));
  if (result.outcome !== 'succeeded') throw new Error(`the training loop ended ${result.outcome}`);
  const last = epochMetrics[epochMetrics.length - 1];
  return {
    samplesPerSecond: last.samplesPerSecond,
    epochRates: epochMetrics.map((m) => m.samplesPerSecond),
    epochSeconds: last.epochSeconds,
    loss: last.loss,
    backend: result.backend,
  };
}

async function fit(model: BenchModel, train: DatasetFiles, epochs: number): Promise<OursResult> {
  const backend = await selectBackend();
  const data = await loadDataset(train, '/data/train');
  const all = new Batcher(data, data.labels.length).fill(0);
  const net = buildModel(ARCHITECTURES[model], train.featureShape, train.numClasses, SEED);
  net.compile({ optimizer: tf.train.momentum(LEARNING_RATE, MOMENTUM), loss: (y, logits) => tf.losses.softmaxCrossEntropy(y, logits) });
  const x = tf.tensor(all.x, all.shape, 'float32');
  const y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(all.y, 'int32'), train.numClasses), 'float32'));
  let started = 0;
  let last = { epochSeconds: 0, loss: NaN };
  await net.fit(x, y, {
    batchSize: BATCH_SIZE,
    epochs,
    shuffle: true,
    verbose: 0,
    callbacks: {
      onEpochBegin: async () => void (started = performance.now()),
      onEpochEnd: async (_epoch, logs) => void (last = { epochSeconds: (performance.now() - started) / 1000, loss: logs?.loss ?? NaN }),
    },
  });
  tf.dispose([x, y]);
  net.dispose();
  return { samplesPerSecond: train.numExamples / last.epochSeconds, ...last, backend };
}

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'mlp' },
    examples: { type: 'string', default: '60000' },
    epochs: { type: 'string', default: '2' },
    fit: { type: 'boolean', default: false },
  },
});
const model = values.model;
if (model !== 'mlp' && model !== 'cnn') throw new Error(`--model is '${model}'; expected mlp or cnn`);
process.env.TFJS_BACKEND ||= 'wasm';
const work = await mkdtemp(path.join(os.tmpdir(), 'tfjs-adapt-bench-'));
try {
  const train = await mnistTrain(path.join(work, 'train'), Number(values.examples));
  const epochs = Number(values.epochs);
  const result = values.fit ? await fit(model, train, epochs) : await loop(model, train, epochs, work);
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  await rm(work, { recursive: true, force: true });
}
