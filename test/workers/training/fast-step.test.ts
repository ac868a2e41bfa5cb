/**
 * The loop's training step (train-step.ts) with the fast gradients of workers/training/network.ts (used on
 * wasm) against tfjs's stock gradients, loss and counts over many steps on real MNIST batches.
 * One matching gradient (models.test.ts) does not
 * show that a run stays on the same path: momentum, batch-norm statistics and rounding compound,
 * so here the whole loss curve must agree within float tolerance.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import type { Architecture } from '../../../src/schemas/job.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { Batcher, loadDataset, type Dataset } from '../../../workers/training/data.js';
import { countCorrect, oneHot } from '../../../workers/training/evaluate.js';
import { buildModel } from '../../../workers/training/models.js';
import { featureLayerOf, trainingForward } from '../../../workers/training/network.js';
import { plainMethod } from '../../../workers/training/methods/method.js';
import { createOptimizer, disposeOptimizer } from '../../../workers/training/optimizers.js';
import { trainStep, type StepSetup } from '../../../workers/training/train-step.js';
import { mnistDataset, tempDir } from './fixtures.js';

/**
 * How tf.profile names a custom gradient called in variableGrads' own scope, as the fast path's
 * layers are (its transposes on wasm are kernels of ours, which the profile does not list).
 */
const CUSTOM_GRADIENT = 'forward';

const SEED = 5;
let mnist: Dataset;

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
  mnist = await loadDataset(await mnistDataset(await tempDir(), 'train', 'train', 0, 4096), '/data/train');
});

interface Recipe {
  /** one of the service's architectures, or a model of any other shape, as an upload would give */
  architecture: Architecture | (() => tf.LayersModel);
  steps: number;
  batchSize: number;
  learningRate: number;
}

/**
 * The loss and correct count of each of `steps` SGD-momentum steps from the same seeded model and
 * batches, on the current backend, and the kernels its first step ran. `fast`: the loop's own step
 * (trainStep: the fast gradients of network.ts, the host-side loss and counts); otherwise tfjs's
 * stock gradients of model.apply and tf.losses.softmaxCrossEntropy, with the counts on the device.
 */
async function lossCurve(recipe: Recipe, fast: boolean): Promise<{ losses: number[]; correct: number[]; kernels: Set<string> }> {
  const start = tf.memory().numTensors;
  const { architecture } = recipe;
  const model = typeof architecture === 'function' ? architecture() : buildModel(architecture, [784], 10, SEED);
  const method = plainMethod('full', model);
  const forward = trainingForward(model, method.variables, featureLayerOf(model, undefined, '/method/featureLayer'), fast);
  const optimizer = createOptimizer({ name: 'sgd', learningRate: recipe.learningRate, momentum: 0.9 });
  const setup: StepSetup = { forward, method, optimizer, sums: { loss: 0, correct: 0, signals: {} }, numClasses: 10, targetLabelled: false, dense: undefined };
  const batcher = new Batcher(mnist, recipe.batchSize, { seed: SEED });
  batcher.shuffle(1);
  const losses: number[] = [];
  const correct: number[] = [];
  const kernels = new Set<string>();
  const step = (i: number) => {
    const batch = batcher.fill(i);
    if (fast) {
      const before = { ...setup.sums };
      trainStep(setup, batch, undefined, 0);
      losses.push((setup.sums.loss - before.loss) / batch.size);
      correct.push(setup.sums.correct - before.correct);
      return;
    }
    const [value, count] = tf.tidy(() => {
      const x = tf.tensor(batch.x, batch.shape, 'float32');
      const y = tf.tensor1d(batch.y, 'int32');
      let right: tf.Scalar | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const { logits } = forward(x);
        right = tf.keep(countCorrect(logits, y));
        return tf.losses.softmaxCrossEntropy(oneHot(y, 10), logits) as tf.Scalar;
      }, method.variables);
      optimizer.applyGradients(grads);
      return [value, right!];
    });
    losses.push(value.dataSync()[0]);
    correct.push(count.dataSync()[0]);
    tf.dispose([value, count]);
  };
  try {
    // The first step is profiled: which kernels ran shows which path was taken.
    for (const k of (await tf.profile(() => step(0))).kernels) kernels.add(k.name);
    for (let i = 1; i < recipe.steps; i++) step(i);
  } finally {
    disposeOptimizer(optimizer);
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, start, 'every tensor of the run was disposed');
  return { losses, correct, kernels };
}

async function onBackend<T>(backend: string, fn: () => Promise<T>): Promise<T> {
  await tf.setBackend(backend);
  try {
    return await fn();
  } finally {
    await tf.setBackend('wasm');
  }
}

function assertSameCurve(
  { losses: fast, correct }: { losses: number[]; correct: number[] },
  { losses: stock, correct: stockCorrect }: { losses: number[]; correct: number[] },
  tolerance: number,
): void {
  assert.equal(fast.length, stock.length);
  // A count can only differ where two logits tie to within the tolerance: not on these batches.
  assert.deepEqual(correct, stockCorrect, 'the same predictions, step by step');
  const worst = Math.max(...fast.map((v, i) => Math.abs(v - stock[i]) / Math.abs(stock[i])));
  assert.ok(worst <= tolerance, `largest relative difference ${worst.toExponential(2)} > ${tolerance}\nfast  ${fast.join(', ')}\nstock ${stock.join(', ')}`);
  assert.ok(stock[stock.length - 1] < stock[0] * 0.9, `the recipe trains at all: loss ${stock[0]} -> ${stock[stock.length - 1]}`);
}

test('seed MLP (784-128-10 linear, batch 64, SGD 0.001 momentum 0.9): the fast step follows the stock loss curve on wasm', async () => {
  const recipe: Recipe = { architecture: { kind: 'mlp', hidden: [128], activation: 'linear' }, steps: 60, batchSize: 64, learningRate: 0.001 };
  const fast = await lossCurve(recipe, true);
  const stock = await lossCurve(recipe, false);
  assert.ok(
    fast.kernels.has(CUSTOM_GRADIENT) && !stock.kernels.has(CUSTOM_GRADIENT),
    'the fast path runs its layers through custom gradients, the stock one does not',
  );
  assertSameCurve(fast, stock, 1e-5);
});

test('MLP with batch norm and relu: the fast step follows the stock loss curve on wasm', async () => {
  const recipe: Recipe = { architecture: { kind: 'mlp', hidden: [64, 32], activation: 'relu', batchNorm: true }, steps: 40, batchSize: 64, learningRate: 0.01 };
  const fast = await lossCurve(recipe, true);
  const stock = await lossCurve(recipe, false);
  assert.ok(
    fast.kernels.has(CUSTOM_GRADIENT) && !stock.kernels.has(CUSTOM_GRADIENT),
    'the fast path runs its layers through custom gradients, the stock one does not',
  );
  assertSameCurve(fast, stock, 1e-5);
});

/**
 * The fast step on wasm against the stock step of the cpu backend, where tfjs has every conv and
 * pooling gradient kernel, and without each kernel in `replaced` on the fast side.
 */
async function againstCpu(recipe: Recipe, replaced: string[]): Promise<void> {
  const fast = await lossCurve(recipe, true);
  const stock = await onBackend('cpu', () => lossCurve(recipe, false));
  for (const kernel of replaced) assert.ok(!fast.kernels.has(kernel) && stock.kernels.has(kernel), `the fast path runs without ${kernel}`);
  // Across backends the sums run in another order: a looser bound than on one backend.
  assertSameCurve(fast, stock, 1e-4);
}

/** A model of MNIST's 784 values read as 28x28x1, through `layers`, then flattened into 10 logits. */
function imageModel(layers: (init: (seed: number) => Record<string, tf.serialization.Serializable>) => tf.layers.Layer[]): () => tf.LayersModel {
  const init = (seed: number) => ({
    kernelInitializer: tf.initializers.glorotUniform({ seed }),
    biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 1 }),
  });
  return () =>
    tf.sequential({
      layers: [
        tf.layers.reshape({ inputShape: [784], targetShape: [28, 28, 1] }),
        ...layers(init),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, ...init(99) }),
      ],
    });
}

test('CNN with batch norm: the fast step on wasm follows the stock loss curve of the cpu backend (wasm has no stock conv kernel gradient)', async () => {
  // Small, because the cpu backend's Conv2DBackpropFilter takes seconds on MNIST-sized batches: the stock side is nearly all of
  // this file's time, so each of these three runs only as many steps as its seeded stock curve needs to fall by 10% (the last
  // step's loss is what assertSameCurve compares; smaller batches do not train here).
  await againstCpu({ architecture: { kind: 'cnn', filters: [4, 8], hidden: [16], batchNorm: true }, steps: 7, batchSize: 8, learningRate: 0.01 }, [
    'Conv2DBackpropFilter',
  ]);
});

test('CNN with "valid" and "same" convolutions of stride 2: the fast step on wasm follows the stock loss curve of the cpu backend', async () => {
  const architecture = imageModel((init) => [
    // More filters than a 3x3 patch of one channel has values: the kernel gradient as a product.
    tf.layers.conv2d({ filters: 12, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', ...init(1) }),
    tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh', ...init(3) }),
    tf.layers.conv2d({ filters: 6, kernelSize: 2, strides: 1, padding: 'valid', activation: 'relu', ...init(5) }),
  ]);
  await againstCpu({ architecture, steps: 16, batchSize: 16, learningRate: 0.1 }, ['Conv2DBackpropInput', 'Conv2DBackpropFilter']);
});

test('CNN with max and average pooling over windows that leave rows out, after activations that go negative: the fast step on wasm follows the stock loss curve of the cpu backend', async () => {
  const architecture = imageModel((init) => [
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'tanh', ...init(1) }),
    tf.layers.maxPooling2d({ poolSize: 3 }),
    tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'valid', activation: 'linear', ...init(3) }),
    tf.layers.averagePooling2d({ poolSize: [2, 3] }),
    tf.layers.conv2d({ filters: 6, kernelSize: 1, activation: 'linear', ...init(5) }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
  ]);
  await againstCpu({ architecture, steps: 17, batchSize: 16, learningRate: 0.1 }, ['MaxPoolGrad', 'AvgPoolGrad']);
});
