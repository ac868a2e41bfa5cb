/**
 * Not a test: run by threads.test.ts in a fresh process per thread count (the wasm build and its
 * thread pool are chosen once per process). Trains `mlp` or `cnn` (the benchmark's recipes) for a
 * few steps of the loop's own step on the first MNIST examples, with TRAINING_THREADS from the
 * environment, and prints one JSON line: the pool's threads, the blocks of products our helper
 * threads computed, each step's loss, every weight after. The last batch is short (39 rows, not
 * a multiple of the product kernel's 4).
 *
 *   node dist/test/workers/training/threads-run.js mlp|cnn STEPS [momentum|nesterov|sgd]
 *
 * The optimizer is SGD with the recipe's momentum by default; each kind's update runs in its own
 * kernel, which the helper threads share for the MLP's first layer.
 */
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import tf = require('@tensorflow/tfjs');
// required, not imported: an ES import of this CommonJS bundle scans its source first (see tfjs.cts)
import wasmBackend = require('@tensorflow/tfjs-backend-wasm');
import { ARCHITECTURES, BATCH_SIZE, LEARNING_RATE, MOMENTUM, SEED, type BenchModel } from '../../../bench/recipes.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { Batcher, readIdx, type Dataset } from '../../../workers/training/data.js';
import { denseStep } from '../../../workers/training/dense-step.js';
import { blocksHelped } from '../../../workers/training/product-helpers.js';
import { plainMethod } from '../../../workers/training/methods/method.js';
import { buildModel } from '../../../workers/training/models.js';
import { featureLayerOf, trainingForward } from '../../../workers/training/network.js';
import { createOptimizer } from '../../../workers/training/optimizers.js';
import { trainStep, type StepSetup } from '../../../workers/training/train-step.js';
import { memoryOf, type WasmBackend } from '../../../workers/training/wasm-kernels.js';
import { MNIST_DIR } from './mnist-dir.js';

export interface ThreadsRun {
  /** the pool XNNPACK runs on, as the backend reports it */
  threads: number;
  /** pthreads the glue runs in Node worker threads (the calling thread is the pool's other one) */
  workerThreads: number[];
  /** blocks of the dense step's products our helper threads computed (product-helpers.ts) */
  helped: number;
  losses: number[];
  /** every weight after the last step, float32 bytes in base64: bit for bit */
  weights: string;
  /** how many of the weights the steps changed, of how many */
  changed: number;
  total: number;
}

const [model, stepsArg, update = 'momentum'] = process.argv.slice(2) as [BenchModel, string, ('momentum' | 'nesterov' | 'sgd')?];
process.env.TFJS_BACKEND = 'wasm';
await selectBackend();
const steps = Number(stepsArg);
const examples = steps * BATCH_SIZE - 25;
const images = (await readIdx(path.join(MNIST_DIR, 'train-images-idx3-ubyte'))).data.subarray(0, examples * 784) as Uint8Array;
const labels = (await readIdx(path.join(MNIST_DIR, 'train-labels-idx1-ubyte'))).data.subarray(0, examples);
const data: Dataset = {
  files: {
    id: 'mnist',
    dir: MNIST_DIR,
    numExamples: examples,
    featureShape: [784],
    featureDtype: 'uint8',
    numClasses: 10,
    classes: [...'0123456789'],
    preprocessing: { scale: 2 / 255, offset: -1 },
  },
  features: images,
  labels: Int32Array.from(labels),
  featureSize: 784,
};

const net = buildModel(ARCHITECTURES[model], [784], 10, SEED);
const method = plainMethod('full', net);
const forward = trainingForward(net, method.variables, featureLayerOf(net, undefined, '/method/featureLayer'), true);
const optimizer = createOptimizer(
  update === 'nesterov'
    ? { name: 'momentum', learningRate: LEARNING_RATE, momentum: MOMENTUM, nesterov: true }
    : { name: 'sgd', learningRate: LEARNING_RATE, ...(update === 'momentum' ? { momentum: MOMENTUM } : {}) },
);
// the step a job of this model takes: the dense step for the MLP
const dense = denseStep(net, method, { featureShape: [784], batchSize: BATCH_SIZE });
const setup: StepSetup = { forward, method, optimizer, sums: { loss: 0, correct: 0, signals: {} }, numClasses: 10, targetLabelled: false, dense };
const values = () => Float32Array.from(net.getWeights().flatMap((w) => Array.from(w.dataSync())));
const initial = values();
const batcher = new Batcher(data, BATCH_SIZE, { seed: SEED });
batcher.shuffle(1);
const losses: number[] = [];
for (let i = 0; i < steps; i++) {
  const before = setup.sums.loss;
  trainStep(setup, batcher.fill(i), undefined, i / steps);
  losses.push(setup.sums.loss - before);
}
const final = values();
const weights = Buffer.from(final.buffer).toString('base64');
const changed = final.filter((v, i) => v !== initial[i]).length;
const glue = (tf.backend() as unknown as { wasm: { PThread?: { runningWorkers: Worker[] } } }).wasm;
const workerThreads = (glue.PThread?.runningWorkers ?? []).map((w) => w.threadId);
const helped = blocksHelped(memoryOf(tf.backend() as WasmBackend));
const result: ThreadsRun = { threads: wasmBackend.getThreadsCount(), workerThreads, helped, losses, weights, changed, total: final.length };
process.stdout.write(JSON.stringify(result) + '\n');
