/**
 * Where a training step's time goes, measured on real steps of the bench's recipe: what runs in
 * parallel on XNNPACK's threads (tfjs's matrix products and convolutions) and what stays on the
 * calling thread (our own products of dense layers, batch filling, every other kernel, tfjs's
 * JavaScript around the kernels). From these, Amdahl's bound on what more threads can give:
 * however many threads XNNPACK gets, a step takes at least its single-threaded part. Used by
 * bench/roofline.ts, in the process whose backend has the thread count to measure.
 *
 * Kernel times are the wall time of each tfjs kernel's function (synchronous on wasm: the
 * calling thread waits for XNNPACK's pool inside it), read by wrapping the registered kernels of
 * the active backend for the duration of the measurement, and our own product kernel
 * (wasm-kernels.ts matMul) likewise; our other WASM kernels (transposes, column sums, the fused
 * update) count in "the rest", with tfjs's JavaScript.
 */
import tf = require('@tensorflow/tfjs');
import { Batcher, type Dataset } from '../workers/training/data.js';
import { denseStep } from '../workers/training/dense-step.js';
import { featureLayerOf, trainingForward } from '../workers/training/network.js';
import { plainMethod } from '../workers/training/methods/method.js';
import { createOptimizer, disposeOptimizer } from '../workers/training/optimizers.js';
import { trainStep, type StepSetup } from '../workers/training/train-step.js';
import { wasmKernels } from '../workers/training/wasm-kernels.js';
import { buildModel } from '../workers/training/models.js';
import { ARCHITECTURES, BATCH_SIZE, LEARNING_RATE, MOMENTUM, SEED, type BenchModel } from './recipes.js';

/** The kernels XNNPACK runs on its thread pool: everything else in a step runs on the calling thread. */
const PARALLEL_KERNELS = new Set([
  'BatchMatMul',
  '_FusedMatMul',
  'Conv2D',
  'FusedConv2D',
  'Conv2DBackpropInput',
  'DepthwiseConv2dNative',
  'FusedDepthwiseConv2D',
]);

export interface StepParts {
  threads: number;
  steps: number;
  /** per step, in ms: the whole step (batch filling included) */
  stepMs: number;
  /** filling the batch on the host (Batcher.fill) */
  fillMs: number;
  /** the kernels of PARALLEL_KERNELS (their wall time: the pool's threads work meanwhile) */
  parallelMs: number;
  /** our own products of dense layers (wasm-kernels.ts matMul), on the calling thread */
  ownProductsMs: number;
  /** every other tfjs kernel, by name, in ms per step */
  serialKernelsMs: Record<string, number>;
  /** the rest: tfjs's JavaScript around the kernels (engine, tape, tidy), the loss on the host, our other WASM kernels */
  restMs: number;
  /** the step less XNNPACK's products: the calling thread's work (our products included), which more threads barely shorten */
  singleThreadedMs: number;
}

export interface StepPartsOptions {
  /** the active backend's thread count */
  threads: number;
  /** timed steps */
  steps: number;
  /** ms; wall time by default. With one thread, process CPU time (cpuClock) keeps other processes' load out. */
  clock?: () => number;
}

/** This process's CPU time in ms: the calling thread's alone while the backend has one thread. */
export const cpuClock = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/**
 * Runs `steps` steps of `model` (after a few untimed ones) on `data` with the active backend and
 * its thread count `threads`, and splits their time. Wall time: on a loaded machine every part
 * grows, but their shares still say what bounds the step.
 */
/** The bench recipe's training step on `net` (the whole network trained, no method terms): its setup, and a batcher over `data` in epoch 1's order. */
export function recipeStep(net: tf.LayersModel, optimizer: tf.Optimizer, data: Dataset): { setup: StepSetup; batcher: Batcher } {
  const method = plainMethod('full', net);
  const forward = trainingForward(net, method.variables, featureLayerOf(net, undefined, '/method/featureLayer'), true);
  // the step a job of this model takes: the dense step for a network of dense layers
  const dense = denseStep(net, method, { featureShape: [data.featureSize], batchSize: BATCH_SIZE });
  const setup: StepSetup = { forward, method, optimizer, sums: { loss: 0, correct: 0, signals: {} }, numClasses: 10, targetLabelled: false, dense };
  const batcher = new Batcher(data, BATCH_SIZE, { seed: SEED });
  batcher.shuffle(1);
  return { setup, batcher };
}

export function stepParts(model: BenchModel, data: Dataset, opts: StepPartsOptions): StepParts {
  const { threads, steps, clock = () => performance.now() } = opts;
  const net = buildModel(ARCHITECTURES[model], [784], 10, SEED);
  const optimizer = createOptimizer({ name: 'sgd', learningRate: LEARNING_RATE, momentum: MOMENTUM });
  const kernelMs = new Map<string, number>();
  const unwrap = wrapKernels(kernelMs, clock);
  const ownProducts = { ms: 0 };
  const unwrapOwn = wrapOwnProducts(ownProducts, clock);
  try {
    const { setup, batcher } = recipeStep(net, optimizer, data);
    try {
      // full batches only: the short last one would be a step of another size
      const full = data.labels.length % BATCH_SIZE === 0 ? batcher.steps : batcher.steps - 1;
      if (full < 1) throw new Error(`stepParts needs at least ${BATCH_SIZE} examples; the dataset has ${data.labels.length}`);
      const step = (i: number) => {
        const started = clock();
        const batch = batcher.fill(i % full);
        const filled = clock();
        trainStep(setup, batch, undefined, 0);
        return { fill: filled - started, all: clock() - started };
      };
      for (let i = 0; i < 5; i++) step(i);
      kernelMs.clear();
      ownProducts.ms = 0;
      let fill = 0;
      let all = 0;
      for (let i = 0; i < steps; i++) {
        const t = step(i);
        fill += t.fill;
        all += t.all;
      }
      let parallel = 0;
      let serial = 0;
      const serialKernelsMs: Record<string, number> = {};
      for (const [name, ms] of [...kernelMs].sort((a, b) => b[1] - a[1])) {
        if (PARALLEL_KERNELS.has(name)) parallel += ms;
        else {
          serial += ms;
          serialKernelsMs[name] = ms / steps;
        }
      }
      return {
        threads,
        steps,
        stepMs: all / steps,
        fillMs: fill / steps,
        parallelMs: parallel / steps,
        ownProductsMs: ownProducts.ms / steps,
        serialKernelsMs,
        restMs: (all - fill - parallel - ownProducts.ms - serial) / steps,
        singleThreadedMs: (all - parallel) / steps,
      };
    } finally {
      setup.dense?.dispose();
    }
  } finally {
    unwrap();
    unwrapOwn();
    disposeOptimizer(optimizer);
    net.dispose();
  }
}

/** Wraps every kernel registered for the active backend with a timer adding into `ms`; returns the undo. */
function wrapKernels(ms: Map<string, number>, clock: () => number): () => void {
  const backend = tf.getBackend();
  const originals = tf.getKernelsForBackend(backend);
  const swap = (configs: tf.KernelConfig[]) => {
    for (const c of configs) {
      tf.unregisterKernel(c.kernelName, backend);
      tf.registerKernel(c);
    }
  };
  swap(
    originals.map((c) => ({
      ...c,
      kernelFunc: (params: Parameters<tf.KernelFunc>[0]) => {
        const started = clock();
        const out = c.kernelFunc(params);
        ms.set(c.kernelName, (ms.get(c.kernelName) ?? 0) + clock() - started);
        return out;
      },
    })),
  );
  return () => swap(originals);
}

/** Wraps our product kernel (on wasm) with a timer adding into `total.ms`; returns the undo. */
function wrapOwnProducts(total: { ms: number }, clock: () => number): () => void {
  const kernels = wasmKernels()?.kernels;
  if (kernels === undefined) return () => undefined;
  const original = kernels.matMul;
  kernels.matMul = (...args) => {
    const started = clock();
    original(...args);
    total.ms += clock() - started;
  };
  return () => void (kernels.matMul = original);
}

/**
 * Amdahl's bound from a step measured on one thread, in samples/s: the single-threaded part stays,
 * and so does `serialProductsMs` of the products (XNNPACK packing their new operands on the
 * calling thread); the rest of the products divides at best by `speedup` (the thread count, or
 * what the products measured on this machine's cores).
 */
export function amdahlSamplesPerSecond(one: StepParts, o: { speedup: number; serialProductsMs: number }): number {
  const serial = Math.min(o.serialProductsMs, one.parallelMs);
  return (BATCH_SIZE * 1000) / (one.singleThreadedMs + serial + (one.parallelMs - serial) / o.speedup);
}
