/**
 * The roofline of a training step on this machine: what the matrix products alone allow, so that
 * a missed throughput target says what bounds it. Run by bench/run.ts in a fresh process per
 * thread count (the wasm backend takes its thread count once per process). Prints one JSON line.
 *
 *   node dist/bench/roofline.js --model mlp|cnn [--threads N]
 *
 * - The step's FLOPs, from the model's layers: each Dense and Conv2D layer's forward product
 *   (2·inputs·outputs per example, a convolution's over every output pixel), its kernel gradient
 *   (as many) and its input gradient (as many, except for the first layer, which needs none).
 *   Elementwise work (biases, relu, pooling, the loss, the update) is left out: it is what a
 *   roofline of the products does not count.
 * - Each of those products timed on the wasm backend, on fixed operands, the best of several
 *   timed batches: GFLOP/s per product. Dense: as the step runs it, our kernel
 *   (wasm-kernels.ts matMul: x·W + b, xᵀ·dy with x read transposed, dy·Wᵀ), and XNNPACK's plain
 *   product in each orientation; conv: tf.conv2d and network.ts's input and kernel gradients.
 * - Each of those products again with its packed operand new at every call, as in a real step
 *   (the right operand of a product, a convolution's filter: the batch, dy or weights just
 *   updated), less the copy that makes it new: tfjs-backend-wasm keeps XNNPACK's packed copy by
 *   the operand's data id, so each new operand is packed anew, on the calling thread, whatever
 *   the thread count: the part of the products that more threads do not divide. (The
 *   convolution gradients build their packed operands inside, so their timing includes it.)
 * - The bound: the best product's GFLOP/s over the step's FLOPs, in samples/s (every FLOP of the
 *   step at the best product speed measured on this machine); and the products alone at their own measured
 *   speeds, also in samples/s (what our step would reach if everything else took no time).
 * - The kernels one step runs (a real trainStep on MNIST batches, after the first steps), and the
 *   same with tfjs's own momentum update instead of the fused one, as before it.
 * - Where a real step's time goes on this thread count (bench/step-parts.ts): the products, which
 *   XNNPACK spreads over its threads, and what stays on the calling thread, the part that bounds
 *   what more threads can give (Amdahl).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import tf = require('@tensorflow/tfjs');
import { selectBackend } from '../workers/training/backend.js';
import { loadDataset } from '../workers/training/data.js';
import { buildModel } from '../workers/training/models.js';
import { conv2dInputGrad, conv2dKernelGrad } from '../workers/training/network.js';
import { createOptimizer, disposeOptimizer } from '../workers/training/optimizers.js';
import { trainStep } from '../workers/training/train-step.js';
import { matMul as ourMatMul, wasmKernels } from '../workers/training/wasm-kernels.js';
import { mnistTrain } from './mnist.js';
import { recipeStep, stepParts, type StepParts } from './step-parts.js';
import { ARCHITECTURES, BATCH_SIZE, LEARNING_RATE, MOMENTUM, SEED, type BenchModel } from './recipes.js';

export interface ProductSpeed {
  layer: string;
  role: 'forward' | 'kernel gradient' | 'input gradient';
  /** the operation timed, with its operands' shapes */
  name: string;
  mflop: number;
  gflops: number;
  /** ms a call takes longer with its packed operand new (as in every step): XNNPACK packing it on the calling thread (ours packs nothing) */
  repackMs: number;
}

export interface RooflineResult {
  model: BenchModel;
  threads: number;
  batch: number;
  /** the step's products, in MFLOP per step */
  stepMflop: number;
  products: ProductSpeed[];
  /** the fastest product's speed */
  bestGflops: number;
  /** batch × bestGflops / the step's FLOPs */
  boundSamplesPerSecond: number;
  /** batch / the time the step's products take at their measured speeds */
  productsSamplesPerSecond: number;
  /** ms per step the step's products spend packing new operands on the calling thread (each layer's in its orientation fastest with new operands) */
  repackMsPerStep: number;
  /** kernels of one step, by name */
  kernels: Record<string, number>;
  kernelsPerStep: number;
  /** the same step with tfjs's own momentum optimizer */
  kernelsPerStepTfjsUpdate: number;
  /** where a step's time goes with this thread count (wall time, over PART_STEPS steps) */
  parts: StepParts;
}

/** timed steps of the step-parts measurement, over PART_BATCHES batches of MNIST */
const PART_STEPS = 300;
const PART_BATCHES = 16;

async function measureParts(model: BenchModel, threads: number): Promise<StepParts> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'tfjs-adapt-step-parts-'));
  try {
    const data = await loadDataset(await mnistTrain(path.join(work, 'train'), PART_BATCHES * BATCH_SIZE), '/data/train');
    return stepParts(model, data, { threads, steps: PART_STEPS });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Seconds per call of `run` (which disposes what it makes): the best of 5 batches of calls, each batch at least 50 ms. */
function secondsPerCall(run: () => void): number {
  for (let i = 0; i < 3; i++) run();
  let calls = 1;
  for (;;) {
    const started = performance.now();
    for (let i = 0; i < calls; i++) run();
    if (performance.now() - started >= 50) break;
    calls *= 2;
  }
  let best = Infinity;
  for (let batch = 0; batch < 5; batch++) {
    const started = performance.now();
    for (let i = 0; i < calls; i++) run();
    best = Math.min(best, (performance.now() - started) / calls);
  }
  return best / 1000;
}

/**
 * `product(a, b)` timed as the roofline counts it (`b` packed once, kept by its data id), and how
 * much longer a call takes when `b` is new, as in a real step: the product on a fresh copy of `b`
 * (tf.clone copies on wasm, so the copy has a data id of its own), less the copy alone.
 */
function timeProduct<T extends tf.Tensor>(a: T, b: T, product: (a: T, b: T) => tf.Tensor): { seconds: number; repackMs: number } {
  const seconds = secondsPerCall(() => product(a, b).dispose());
  const fresh = secondsPerCall(() => {
    const copy = tf.clone(b);
    product(a, copy).dispose();
    copy.dispose();
  });
  const copying = secondsPerCall(() => tf.clone(b).dispose());
  return { seconds, repackMs: Math.max(0, (fresh - copying - seconds) * 1000) };
}

/** The products of every Dense and Conv2D layer's forward and gradients, timed; `first` needs no input gradient. */
function layerProducts(model: tf.LayersModel, batch: number): { products: ProductSpeed[]; stepFlop: number } {
  const products: ProductSpeed[] = [];
  let stepFlop = 0;
  let first = true;
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    if (kind !== 'Dense' && kind !== 'Conv2D') continue;
    const inShape = [batch, ...(layer.inboundNodes[0].inputTensors[0].shape.slice(1) as number[])];
    const outShape = [batch, ...(layer.outputShape as number[]).slice(1)];
    // the variable itself, not a copy: the model disposes it
    const kernel = layer.getWeights()[0];
    const time = <T extends tf.Tensor>(role: ProductSpeed['role'], name: string, flop: number, a: T, b: T, product: (a: T, b: T) => tf.Tensor) => {
      const { seconds, repackMs } = timeProduct(a, b, product);
      products.push({ layer: layer.name, role, name, mflop: flop / 1e6, gflops: flop / seconds / 1e9, repackMs });
    };
    const x = tf.randomNormal(inShape);
    const dy = tf.randomNormal(outShape);
    const [inputs, units] = kernel.shape as [number, number];
    if (kind === 'Dense') {
      const flop = 2 * batch * inputs * units;
      const w = kernel as tf.Tensor2D;
      const wT = tf.transpose(w);
      const xT = tf.transpose(x);
      const dyT = tf.transpose(dy);
      const matMul = (p: tf.Tensor2D, q: tf.Tensor2D) => tf.matMul(p, q);
      const wasm = wasmKernels();
      if (wasm !== undefined) {
        const bias = tf.zeros([units]) as tf.Tensor1D;
        time('forward', `ours x·W + b [${batch}, ${inputs}]·[${inputs}, ${units}]`, flop, x as tf.Tensor2D, w, (p, q) =>
          ourMatMul(wasm, p, q, { transposeA: false, bias }),
        );
        time('kernel gradient', `ours xᵀ·dy [${inputs}, ${batch}]·[${batch}, ${units}]`, flop, x as tf.Tensor2D, dy as tf.Tensor2D, (p, q) =>
          ourMatMul(wasm, p, q, { transposeA: true }),
        );
        if (!first)
          time('input gradient', `ours dy·Wᵀ [${batch}, ${units}]·[${units}, ${inputs}]`, flop, dy as tf.Tensor2D, wT, (p, q) =>
            ourMatMul(wasm, p, q, { transposeA: false }),
          );
        bias.dispose();
      }
      time('forward', `x·W [${batch}, ${inputs}]·[${inputs}, ${units}]`, flop, x as tf.Tensor2D, w, matMul);
      time('forward', `Wᵀ·xᵀ [${units}, ${inputs}]·[${inputs}, ${batch}]`, flop, wT, xT as tf.Tensor2D, matMul);
      time('kernel gradient', `xᵀ·dy [${inputs}, ${batch}]·[${batch}, ${units}]`, flop, xT as tf.Tensor2D, dy as tf.Tensor2D, matMul);
      if (!first) {
        time('input gradient', `dy·Wᵀ [${batch}, ${units}]·[${units}, ${inputs}]`, flop, dy as tf.Tensor2D, wT, matMul);
        time('input gradient', `W·dyᵀ [${inputs}, ${units}]·[${units}, ${batch}]`, flop, w, dyT as tf.Tensor2D, matMul);
      }
      stepFlop += (first ? 2 : 3) * flop;
      tf.dispose([wT, xT, dyT]);
    } else {
      const config = layer.getConfig();
      const strides = config.strides as [number, number];
      const padding = config.padding as 'same' | 'valid';
      const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
      const pixels = outShape[1] * outShape[2];
      const flop = 2 * batch * pixels * kh * kw * cin * cout;
      const w = kernel as tf.Tensor4D;
      const shape = `${kh}x${kw}x${cin}x${cout} on [${inShape.join(', ')}]`;
      time('forward', `conv2d ${shape}`, flop, x as tf.Tensor4D, w, (input, filter) => tf.conv2d(input, filter, strides, padding));
      time('kernel gradient', `conv2dKernelGrad ${shape}`, flop, x as tf.Tensor4D, dy as tf.Tensor4D, (input, g) =>
        conv2dKernelGrad(input, g, w.shape, strides, padding),
      );
      if (!first)
        time('input gradient', `conv2dInputGrad ${shape}`, flop, dy as tf.Tensor4D, w, (g, filter) => conv2dInputGrad(g, filter, inShape, strides, padding));
      stepFlop += (first ? 2 : 3) * flop;
    }
    tf.dispose([x, dy]);
    first = false;
  }
  return { products, stepFlop };
}

/** The kernels of one step of the bench's recipe on MNIST, after `warm` steps (the first creates the momentum slots). */
async function stepKernels(model: BenchModel, tfjsUpdate: boolean): Promise<Record<string, number>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'tfjs-adapt-roofline-'));
  const net = buildModel(ARCHITECTURES[model], [784], 10, SEED);
  const optimizer = tfjsUpdate ? tf.train.momentum(LEARNING_RATE, MOMENTUM) : createOptimizer({ name: 'sgd', learningRate: LEARNING_RATE, momentum: MOMENTUM });
  try {
    const data = await loadDataset(await mnistTrain(path.join(work, 'train'), 4 * BATCH_SIZE), '/data/train');
    const { setup, batcher } = recipeStep(net, optimizer, data);
    try {
      for (let i = 0; i < 3; i++) trainStep(setup, batcher.fill(i), undefined, 0);
      const counts: Record<string, number> = {};
      const profile = await tf.profile(() => trainStep(setup, batcher.fill(3), undefined, 0));
      for (const k of profile.kernels) counts[k.name] = (counts[k.name] ?? 0) + 1;
      return counts;
    } finally {
      setup.dense?.dispose();
    }
  } finally {
    disposeOptimizer(optimizer);
    net.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { model: { type: 'string', default: 'mlp' }, threads: { type: 'string', default: '1' } } });
const model = values.model;
if (model !== 'mlp' && model !== 'cnn') throw new Error(`--model is '${model}'; expected mlp or cnn`);
process.env.TFJS_BACKEND ||= 'wasm';
process.env.TRAINING_THREADS = values.threads;
await selectBackend();
const net = buildModel(ARCHITECTURES[model], [784], 10, SEED);
const { products, stepFlop } = layerProducts(net, BATCH_SIZE);
net.dispose();
const kernels = await stepKernels(model, false);
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const bestGflops = Math.max(...products.map((p) => p.gflops));
// Each layer's products in the step (its forward, its kernel gradient and, past the first layer,
// its input gradient), each at the best speed of the orientations timed for it.
const fastest = new Map<string, ProductSpeed>();
for (const p of products) {
  const key = `${p.layer} ${p.role}`;
  if ((fastest.get(key)?.gflops ?? 0) < p.gflops) fastest.set(key, p);
}
const productSeconds = [...fastest.values()].reduce((s, p) => s + p.mflop / 1e3 / p.gflops, 0);
// The packing a step pays: each layer's products in the form fastest with new operands (for a
// dense layer on wasm, our kernel, which packs nothing), with their packing time.
const withNewOperands = (p: ProductSpeed) => p.mflop / p.gflops + p.repackMs;
const stepProducts = new Map<string, ProductSpeed>();
for (const p of products) {
  const key = `${p.layer} ${p.role}`;
  const kept = stepProducts.get(key);
  if (kept === undefined || withNewOperands(p) < withNewOperands(kept)) stepProducts.set(key, p);
}
const repackMsPerStep = [...stepProducts.values()].reduce((s, p) => s + p.repackMs, 0);
const result: RooflineResult = {
  model,
  threads: Number(values.threads),
  batch: BATCH_SIZE,
  stepMflop: stepFlop / 1e6,
  products,
  bestGflops,
  boundSamplesPerSecond: (BATCH_SIZE * bestGflops * 1e9) / stepFlop,
  productsSamplesPerSecond: BATCH_SIZE / productSeconds,
  repackMsPerStep,
  kernels,
  kernelsPerStep: sum(kernels),
  kernelsPerStepTfjsUpdate: sum(await stepKernels(model, true)),
  parts: await measureParts(model, Number(values.threads)),
};
process.stdout.write(JSON.stringify(result) + '\n');
