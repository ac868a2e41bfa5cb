/**
 * The methods on a small deep functional base of the layers real image networks are made of
 * (strided conv, depthwise conv, batch norm, ReLU(6), a residual Add, global pooling): one
 * training step of the loop's own trainStep on wasm changes every trained weight as the same step
 * on the cpu backend does, from the same weights and batches. On wasm the convolutions' gradients
 * run through workers/training/gradients/wasm-kernels.ts.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { trainsOnTarget } from '../../../src/jobs/methods/registry.js';
import type { JobSpec } from '../../../src/schemas/job.js';
import { selectBackend } from '../../../workers/training/backend.js';
import type { Batch } from '../../../workers/training/data.js';
import { createMethod } from '../../../workers/training/methods/registry.js';
import { featureLayerOf, trainingForward } from '../../../workers/training/network.js';
import { signalSums, trainStep } from '../../../workers/training/train-step.js';

before(async () => {
  process.env.TFJS_BACKEND = 'wasm';
  assert.equal(await selectBackend(), 'wasm');
});

const CLASSES = 3;
const init = (seed: number) => tf.initializers.randomUniform({ minval: -0.4, maxval: 0.4, seed });

/** A MobileNetV2-like block: conv stride 2, BN, ReLU6, depthwise, BN, ReLU6, 1x1 conv, BN, Add, pooling, logits. */
function deepBase(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  const bnRelu = (x: tf.SymbolicTensor, name: string, relu = true) => {
    const bn = tf.layers.batchNormalization({ name: `${name}_bn` }).apply(x) as tf.SymbolicTensor;
    return relu ? (tf.layers.reLU({ maxValue: 6, name: `${name}_relu` }).apply(bn) as tf.SymbolicTensor) : bn;
  };
  const stem = bnRelu(
    tf.layers
      .conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(1), name: 'stem' })
      .apply(input) as tf.SymbolicTensor,
    'stem',
  );
  const dw = bnRelu(
    tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: init(2), name: 'dw' }).apply(stem) as tf.SymbolicTensor,
    'dw',
  );
  const project = bnRelu(
    tf.layers.conv2d({ filters: 6, kernelSize: 1, useBias: false, kernelInitializer: init(3), name: 'project' }).apply(dw) as tf.SymbolicTensor,
    'project',
    false,
  );
  const sum = tf.layers.add({ name: 'add' }).apply([stem, project]) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(sum) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: CLASSES, kernelInitializer: init(4), name: 'logits' }).apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'deep' });
}

function batch(seed: number, size: number): Batch {
  const x = Float32Array.from({ length: size * 8 * 8 * 3 }, (_, i) => Math.sin(i * 0.37 + seed) * 1.5);
  const y = Int32Array.from({ length: size }, (_, i) => (i + seed) % CLASSES);
  const oneHot = new Float32Array(size * CLASSES);
  y.forEach((c, i) => (oneHot[i * CLASSES + c] = 1));
  return { size, x, y, oneHot, shape: [size, 8, 8, 3] };
}

/** Every weight of the model (trained and statistics) after one SGD step of `spec`'s method on `backend`. */
async function afterOneStep(backend: string, spec: JobSpec): Promise<Map<string, Float32Array>> {
  await tf.setBackend(backend);
  const model = deepBase();
  const feature = featureLayerOf(model, spec.method?.featureLayer, '/method/featureLayer');
  const method = createMethod({ model, spec, feature, newLayers: new Set(['logits']), seed: 5 });
  const forward = trainingForward(model, method.variables, feature, true);
  const optimizer = tf.train.sgd(0.1);
  const setup = {
    forward,
    method,
    optimizer,
    sums: { loss: 0, correct: 0, signals: signalSums(method.signals) },
    numClasses: CLASSES,
    targetLabelled: false,
    dense: undefined,
  };
  trainStep(setup, batch(1, 4), trainsOnTarget(spec) ? batch(2, 4) : undefined, 0.5);
  assert.ok(Number.isFinite(setup.sums.loss), `${backend}: the loss is ${setup.sums.loss}`);
  const weights = new Map(await Promise.all(model.weights.map(async (w) => [w.originalName, (await w.read().data()) as Float32Array] as const)));
  for (const [name, v] of Object.entries(method.state)) weights.set(`state/${name}`, (await v.data()) as Float32Array);
  method.dispose();
  optimizer.dispose();
  tf.dispose(Object.values(setup.sums.signals));
  model.dispose();
  return weights;
}

const SPECS: Record<string, JobSpec> = {
  l2sp: { type: 'finetune', model: {}, data: {}, strategy: { kind: 'l2sp', alpha: 0.5, beta: 0.1 } },
  dann: { type: 'domain_adaptation', model: {}, data: {}, method: { kind: 'dann', weight: 1, hiddenUnits: 8 } },
  coral: { type: 'domain_adaptation', model: {}, data: {}, method: { kind: 'coral', weight: 1, featureLayer: 'add' } },
  mmd: { type: 'domain_adaptation', model: {}, data: {}, method: { kind: 'mmd', weight: 1, featureLayer: 'pool' } },
};

for (const [name, spec] of Object.entries(SPECS)) {
  test(`${name}: one step on a deep functional base changes the weights on wasm as on cpu`, async () => {
    const cpu = await afterOneStep('cpu', spec);
    const wasm = await afterOneStep('wasm', spec);
    const initial = new Map(deepBaseWeights());
    let changed = 0;
    for (const [weight, expected] of cpu) {
      const actual = wasm.get(weight);
      assert.ok(actual, `wasm has no ${weight}`);
      const worst = actual.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0);
      assert.ok(worst <= 1e-4 * Math.max(1, ...expected.map(Math.abs)), `${name}, ${weight}: wasm differs from cpu by up to ${worst}`);
      const start = initial.get(weight);
      if (start && start.some((v, i) => Math.abs(v - expected[i]) > 1e-7)) changed++;
    }
    // the stem, depthwise and projection kernels, every batch norm and the logits all moved
    assert.ok(changed >= 10, `${name}: only ${changed} weights changed in the step`);
  });
}

/** The seeded initial weights, on the cpu backend. */
function deepBaseWeights(): Array<[string, Float32Array]> {
  const model = deepBase();
  const out = model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array] as [string, Float32Array]);
  model.dispose();
  return out;
}

test('freeze: a step trains the head only; the frozen base, batch-norm statistics included, stays bit for bit', async () => {
  const spec = { type: 'finetune', model: {}, data: {}, strategy: { kind: 'freeze' } } as JobSpec;
  const initial = new Map(deepBaseWeights());
  const after = await afterOneStep('wasm', spec);
  for (const [weight, start] of initial) {
    const now = after.get(weight)!;
    const same = now.every((v, i) => v === start[i]);
    assert.equal(same, !weight.startsWith('logits/'), `${weight} ${same ? 'did not change' : 'changed'}`);
  }
});
