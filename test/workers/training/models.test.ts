import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { selectBackend } from '../../../workers/training/backend.js';
import { oneHot } from '../../../workers/training/evaluate.js';
import { buildCnn, buildMlp, checkCompatible, loadModel, saveModel } from '../../../workers/training/models.js';
import { attachNewHead } from '../../../workers/training/new-head.js';
import { conv2d, conv2dKernelGrad, dense, featureLayerOf, pool2d, trainingForward } from '../../../workers/training/network.js';
import { TrainingError, type DatasetFiles } from '../../../src/jobs/task.js';
import { tempDir } from './fixtures.js';

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
});

const linear = { kind: 'mlp' as const, hidden: [16, 8], activation: 'linear' as const };

function files(featureShape: number[], numClasses: number): DatasetFiles {
  return { id: 'ds', dir: '/nowhere', numExamples: 1, featureShape, featureDtype: 'uint8', numClasses, classes: [], preprocessing: { scale: 1, offset: 0 } };
}

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: string, pattern: RegExp): Promise<void> {
  const check = (err: unknown) => {
    assert.ok(err instanceof TrainingError, `expected a TrainingError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.param, '/model/base');
    assert.match(err.message, pattern);
    return true;
  };
  if (typeof promise === 'function') assert.throws(promise, check);
  else await assert.rejects(promise, check);
}

/** Reads a saved model with nothing but tfjs: fromMemory over the files' bytes. */
async function loadWithTfjs(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const weights = await readFile(path.join(dir, json.weightsManifest[0].paths[0]));
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      userDefinedMetadata: json.userDefinedMetadata!,
    }),
  );
}

test('buildMlp names layers stably, ends in linear logits and initialises from the seed', () => {
  const a = buildMlp(linear, [20], 5, 3);
  const b = buildMlp(linear, [20], 5, 3);
  const c = buildMlp(linear, [20], 5, 4);
  try {
    assert.deepEqual(
      a.layers.map((l) => l.name),
      ['dense_1', 'dense_2', 'logits'],
    );
    assert.deepEqual(a.outputs[0].shape, [null, 5]);
    assert.equal(a.layers[2].getConfig().activation, 'linear');
    assert.equal(a.layers[0].getConfig().activation, 'linear');
    const [wa, wb, wc] = [a, b, c].map((m) => m.layers[0].getWeights()[0].dataSync());
    assert.deepEqual(wa, wb);
    assert.notDeepEqual(wa, wc);
    const limit = 1 / Math.sqrt(20);
    assert.ok(
      wa.every((v) => Math.abs(v) <= limit),
      'first-layer weights lie in ±1/sqrt(fanIn)',
    );
    assert.ok(Math.max(...wa) > limit * 0.8, 'and fill that range');
  } finally {
    [a, b, c].forEach((m) => m.dispose());
  }
  const images = buildMlp({ kind: 'mlp', hidden: [4] }, [6, 6, 1], 3, 1);
  assert.deepEqual(
    images.layers.map((l) => l.name),
    ['flatten', 'dense_1', 'logits'],
  );
  assert.equal(images.layers[1].getConfig().activation, 'relu', 'hidden layers default to relu');
  images.dispose();
});

test('saveModel writes a standard LayersModel atomically, with metadata, and replaces an old one', async () => {
  const root = await tempDir();
  const dir = path.join(root, 'models', 'm1');
  const model = buildMlp(linear, [20], 5, 1);
  const metadata = { inputShape: [20], classes: ['a', 'b', 'c', 'd', 'e'], preprocessing: { scale: 2, offset: -1 }, output: 'logits', jobId: 'j1' };
  model.setUserDefinedMetadata({ tfjsAdapt: metadata });
  const x = tf.randomNormal([4, 20], 0, 1, 'float32', 1);
  try {
    await saveModel(model, dir, { 'note.txt': 'extra' });
    assert.deepEqual((await readdir(dir)).sort(), ['model.json', 'note.txt', 'weights.bin']);
    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    assert.deepEqual(json.userDefinedMetadata, { tfjsAdapt: metadata });
    assert.equal((await readFile(path.join(dir, 'weights.bin'))).length, (20 * 16 + 16 + 16 * 8 + 8 + 8 * 5 + 5) * 4);

    const loaded = await loadWithTfjs(dir);
    assert.deepEqual(loaded.getUserDefinedMetadata(), { tfjsAdapt: metadata });
    assert.deepEqual((loaded.predict(x) as tf.Tensor).dataSync(), (model.predict(x) as tf.Tensor).dataSync());
    loaded.dispose();

    const other = buildMlp(linear, [20], 5, 2);
    await saveModel(other, dir);
    assert.deepEqual((await readdir(dir)).sort(), ['model.json', 'weights.bin'], 'the old directory was replaced whole');
    assert.deepEqual(await readdir(path.join(root, 'models')), ['m1'], 'no temp or old directories are left');
    const reloaded = await loadModel(dir);
    assert.deepEqual((reloaded.model.predict(x) as tf.Tensor).dataSync(), (other.predict(x) as tf.Tensor).dataSync());
    reloaded.model.dispose();
    other.dispose();
  } finally {
    model.dispose();
    x.dispose();
  }
});

test('loadModel turns a softmax output into logits and rejects unusable files', async () => {
  const root = await tempDir();
  const keras = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [6], units: 4, activation: 'relu' }), tf.layers.dense({ units: 3, activation: 'softmax' })],
  });
  const dir = path.join(root, 'keras');
  await saveModel(keras, dir);
  const x = tf.randomNormal([2, 6], 0, 1, 'float32', 2);
  const { model, notes } = await loadModel(dir);
  assert.match(notes.join(), /softmax output was replaced by logits/);
  const logits = model.predict(x) as tf.Tensor;
  const probabilities = keras.predict(x) as tf.Tensor;
  assert.ok(tf.max(tf.abs(tf.sub(tf.softmax(logits), probabilities))).dataSync()[0] < 1e-6);
  [keras, model, x, logits, probabilities].forEach((t) => t.dispose());

  await rejectsWith(loadModel(path.join(root, 'none')), 'invalid_model', /model\.json could not be read/);
  const graph = path.join(root, 'graph');
  await mkdir(graph);
  await writeFile(path.join(graph, 'model.json'), JSON.stringify({ format: 'graph-model', modelTopology: {} }));
  await rejectsWith(loadModel(graph), 'invalid_model', /not a tfjs LayersModel/);
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  json.weightsManifest[0].paths = ['../keras/weights.bin'];
  const escape = path.join(root, 'escape');
  await mkdir(escape);
  await writeFile(path.join(escape, 'model.json'), JSON.stringify(json));
  await rejectsWith(loadModel(escape), 'invalid_model', /points outside the model directory/);
  await writeFile(path.join(escape, 'model.json'), JSON.stringify({ ...json, weightsManifest: undefined }));
  await rejectsWith(loadModel(escape), 'invalid_model', /has no "weightsManifest"/);
  await writeFile(path.join(escape, 'model.json'), JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0], paths: ['short.bin'] }] }));
  await writeFile(path.join(escape, 'short.bin'), new Uint8Array(8));
  await rejectsWith(loadModel(escape), 'invalid_model', /base model in .*escape: /);
});

test('checkCompatible requires the dataset feature shape and one logit per class', () => {
  const model = buildMlp(linear, [20], 5, 1);
  try {
    checkCompatible(model, files([20], 5));
    const incompatible = (err: unknown) =>
      err instanceof TrainingError && err.code === 'incompatible_model' && err.param === '/model/base' && err.name === 'UnrecoverableError';
    assert.throws(
      () => checkCompatible(model, files([21], 5)),
      (e: unknown) => incompatible(e) && /inputs of shape \[20\]; expected the dataset's featureShape \[21\]/.test((e as Error).message),
    );
    assert.throws(() => checkCompatible(model, files([4, 5], 5)), incompatible);
    assert.throws(
      () => checkCompatible(model, files([20], 6)),
      (e: unknown) => incompatible(e) && /output has shape \[\?, 5\]; expected \[\?, 6\]/.test((e as Error).message),
    );
  } finally {
    model.dispose();
  }
});

/** Loss and gradients of every weight, through network.ts's layer steps (dense() for dense layers) or tfjs's own layers. */
function lossAndGrads(model: tf.LayersModel, fast: boolean, x: tf.Tensor, labels: tf.Tensor2D) {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const forward = trainingForward(model, variables, featureLayerOf(model, undefined, '/method/featureLayer'), fast);
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, forward(x).logits) as tf.Scalar, variables);
  const result = { loss: value.dataSync()[0], grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync()])) };
  tf.dispose([value, grads]);
  return result;
}

for (const backend of ['wasm', 'cpu']) {
  test(`on ${backend}, dense layers through dense() give tfjs's own loss and gradients`, async () => {
    await tf.setBackend(backend);
    const start = tf.memory().numTensors;
    try {
      for (const [activation, shape] of [
        ['relu', [12]],
        ['tanh', [3, 4]],
        ['linear', [12]],
      ] as const) {
        const model = buildMlp({ kind: 'mlp', hidden: [16, 8], activation }, [...shape], 5, 7);
        const x = tf.randomNormal([9, ...shape], 0, 1, 'float32', 5);
        const labels = tf.tidy(() => oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0, 1, 2, 3], 'int32'), 5));
        const fast = lossAndGrads(model, true, x, labels);
        const stock = lossAndGrads(model, false, x, labels);
        const kernels = async (fastPath: boolean) => (await tf.profile(() => void lossAndGrads(model, fastPath, x, labels))).kernels.map((k) => k.name);
        // tf.profile names a custom gradient called in variableGrads' own scope 'forward' (and does
        // not list our kernels); elsewhere than on wasm dense() is tfjs's own ops
        assert.equal((await kernels(true)).includes('forward'), backend === 'wasm', 'custom gradients (our products) on wasm only');
        assert.ok(!(await kernels(false)).includes('forward'));
        assert.ok(Math.abs(fast.loss - stock.loss) < 1e-6, `${activation} loss ${fast.loss} vs ${stock.loss}`);
        assert.deepEqual(Object.keys(fast.grads), Object.keys(stock.grads));
        for (const [name, g] of Object.entries(stock.grads)) {
          const scale = Math.max(...g.map(Math.abs));
          const diff = Math.max(...fast.grads[name].map((v, i) => Math.abs(v - g[i])));
          assert.ok(scale > 0 && diff <= 1e-5 * scale, `${activation} ${name}: max difference ${diff} at scale ${scale}`);
        }
        tf.dispose([x, labels]);
        model.dispose();
      }
      assert.equal(tf.memory().numTensors, start);
    } finally {
      await tf.setBackend('wasm');
    }
  });
}

test('dense() gives the stock gradients, and the input gradient only when asked', () => {
  const start = tf.memory().numTensors;
  // [rows, inputs, units]: a small kernel; large ones with more units, or more inputs, than rows
  for (const [rows, inputs, units] of [
    [3, 4, 2],
    [8, 512, 160],
    [8, 1100, 60],
  ] as const) {
    tf.tidy(() => {
      const x = tf.randomNormal([rows, inputs], 0, 1, 'float32', 1) as tf.Tensor2D;
      const w = tf.randomNormal([inputs, units], 0, 0.05, 'float32', 2) as tf.Tensor2D;
      const b = tf.randomNormal([units], 0, 1, 'float32', 3) as tf.Tensor1D;
      const close = (a: tf.Tensor, expected: tf.Tensor, what: string) => {
        const diff = tf.max(tf.abs(tf.sub(a, expected))).dataSync()[0];
        assert.ok(diff < 1e-5 * Math.max(1, tf.max(tf.abs(expected)).dataSync()[0]), `${rows}x${inputs}x${units} ${what}: differs by ${diff}`);
      };
      const stock = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.square(tf.add(tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D), bi))))([
        x,
        w,
        b,
      ]);
      const ours = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.square(dense(xi as tf.Tensor2D, wi as tf.Tensor2D, bi as tf.Tensor1D, true))),
      )([x, w, b]);
      ['dx', 'dW', 'db'].forEach((what, i) => close(ours[i], stock[i], what));
      const [onlyW, onlyB] = tf.grads((wi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.square(dense(x, wi as tf.Tensor2D, bi as tf.Tensor1D, false))))([w, b]);
      close(onlyW, stock[1], 'dW without dx');
      close(onlyB, stock[2], 'db without dx');
    });
  }
  assert.equal(tf.memory().numTensors, start);
});

test('trainingForward falls back to model.apply for models that are not a dense chain', () => {
  const input = tf.input({ shape: [6] });
  const left = tf.layers.dense({ units: 3 }).apply(input) as tf.SymbolicTensor;
  const right = tf.layers.dense({ units: 3 }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: tf.layers.add().apply([left, right]) as tf.SymbolicTensor });
  const x = tf.randomNormal([2, 6], 0, 1, 'float32', 9);
  const labels = oneHot(tf.tensor1d([0, 2], 'int32'), 3);
  const fast = lossAndGrads(model, true, x, labels);
  const stock = lossAndGrads(model, false, x, labels);
  assert.deepEqual(fast, stock);
  tf.dispose([x, labels]);
  model.dispose();
});

/** Runs `fn` on `backend`, returning plain arrays so results can be compared across backends. */
async function on<T>(backend: string, fn: () => T): Promise<T> {
  await tf.setBackend(backend);
  try {
    return fn();
  } finally {
    await tf.setBackend('wasm');
  }
}

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7919 + i * 104729) * 0.5);

test("conv2d() gives the cpu backend's own gradients on wasm, which lacks Conv2DBackpropFilter, with a bias and with a relu", async () => {
  const start = tf.memory().numTensors;
  // Then patches smaller than the outputs: of 12 and 6 outputs, whose kernel gradient is a
  // product; of 16 and 32, which on wasm our kernel sums (padding, strides, more input channels).
  const cases = [
    [1, 'same', 3, 7, false, 3, 4],
    [2, 'same', 3, 7, true, 3, 4],
    [1, 'valid', 3, 6, true, 3, 4],
    [2, 'valid', 5, 9, false, 3, 4],
    [2, 'same', 2, 8, true, 3, 4],
    [1, 'same', 3, 7, true, 1, 12],
    [2, 'valid', 2, 9, false, 1, 6],
    [1, 'same', 3, 7, true, 1, 16],
    [2, 'same', 3, 8, false, 1, 32],
    [2, 'valid', 2, 9, true, 3, 16],
  ] as const;
  for (const [stride, padding, kernel, size, relu, inChannels, outChannels] of cases) {
    const xShape: [number, number, number, number] = [2, size, size + 1, inChannels];
    const wShape: [number, number, number, number] = [kernel, kernel, inChannels, outChannels];
    const xs = values(
      xShape.reduce((a, b) => a * b),
      1,
    );
    const ws = values(
      wShape.reduce((a, b) => a * b),
      2,
    );
    const bs = values(outChannels, 3);
    const inputs = () => [tf.tensor(xs, xShape), tf.tensor(ws, wShape), tf.tensor(bs, [outChannels])];
    const cpu = await on('cpu', () =>
      tf.tidy(() => {
        const layer = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => {
          const y = tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, padding), b);
          return relu ? tf.relu(y) : y;
        };
        return tf
          .grads((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(layer(x, w, b))))(inputs())
          .map((g) => g.dataSync());
      }),
    );
    const wasm = tf.tidy(() => {
      const grads = tf.grads((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(conv2d(x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D, [stride, stride], padding, true, relu))),
      )(inputs());
      const direct = conv2dKernelGrad(
        tf.tensor(xs, xShape) as tf.Tensor4D,
        tf.ones(tf.conv2d(tf.tensor(xs, xShape) as tf.Tensor4D, tf.tensor(ws, wShape) as tf.Tensor4D, stride, padding).shape) as tf.Tensor4D,
        wShape,
        [stride, stride],
        padding,
      );
      assert.deepEqual(direct.shape, wShape);
      return grads.map((g) => g.dataSync());
    });
    for (const [i, name] of ['input', 'kernel', 'bias'].entries()) {
      const scale = Math.max(...cpu[i].map(Math.abs));
      const diff = Math.max(...wasm[i].map((v, j) => Math.abs(v - cpu[i][j])));
      assert.ok(
        diff <= 1e-4 * scale,
        `stride ${stride} ${padding} kernel ${kernel}x${inChannels}x${outChannels}${relu ? ' relu' : ''}: ${name} gradient differs by ${diff} at scale ${scale}`,
      );
    }
  }
  assert.equal(tf.memory().numTensors, start);
});

test("pool2d() gives the cpu backend's values and gradients on wasm, with ties and windows without a positive value", async () => {
  const start = tf.memory().numTensors;
  for (const kind of ['max', 'avg'] as const) {
    // [size, height, width, channels]: on wasm, channels four at a time and those left over one at a time
    const cases: [[number, number], number, number, number][] = [
      [[2, 2], 6, 6, 2],
      [[3, 3], 7, 9, 6],
      [[2, 3], 5, 4, 8],
      [[1, 2], 5, 5, 2],
    ];
    for (const [size, height, width, channels] of cases) {
      const shape: [number, number, number, number] = [3, height, width, channels];
      // Few distinct values, so windows often tie and are often all negative.
      const xs = values(
        shape.reduce((a, b) => a * b),
        4,
      ).map((v) => Math.round(v * 4) / 2);
      const pooled = (x: tf.Tensor4D) => (kind === 'max' ? tf.maxPool(x, size, size, 'valid') : tf.avgPool(x, size, size, 'valid'));
      const run = (pool: (x: tf.Tensor4D) => tf.Tensor4D) =>
        tf.tidy(() => {
          const x = tf.tensor4d(xs, shape);
          const y = pool(x);
          const weights = tf.tensor(values(y.size, 5), y.shape);
          return [
            y.dataSync(),
            tf
              .grad((input: tf.Tensor) => tf.sum(tf.mul(pool(input as tf.Tensor4D), weights)))(x)
              .dataSync(),
          ];
        });
      const cpu = await on('cpu', () => run(pooled));
      const wasm = run((x) => pool2d(x, size, kind));
      for (const [i, name] of ['value', 'gradient'].entries()) {
        const diff = Math.max(...wasm[i].map((v, j) => Math.abs(v - cpu[i][j])));
        assert.ok(diff <= 1e-6, `${kind} pooling ${size.join('x')} of ${height}x${width}x${channels}: ${name} differs by ${diff}`);
      }
    }
  }
  assert.equal(tf.memory().numTensors, start);
});

test("a cnn with batch norm: stable names, [784] read as 28x28x1, and on wasm the cpu backend's loss and gradients", async () => {
  const architecture = { kind: 'cnn' as const, hidden: [8], filters: [4, 6], batchNorm: true };
  const model = buildCnn(architecture, [784], 10, 3);
  assert.deepEqual(
    model.layers.map((l) => l.name),
    [
      'reshape',
      'conv_1',
      'conv_1_bn',
      'conv_1_act',
      'pool_1',
      'conv_2',
      'conv_2_bn',
      'conv_2_act',
      'pool_2',
      'flatten',
      'dense_1',
      'dense_1_bn',
      'dense_1_act',
      'logits',
    ],
  );
  assert.deepEqual(model.inputs[0].shape, [null, 784]);
  assert.deepEqual(featureLayerOf(model, undefined, '/method/featureLayer').name, 'dense_1_act');
  model.dispose();
  assert.throws(
    () => buildCnn(architecture, [783], 10, 3),
    (e: unknown) => e instanceof TrainingError && e.param === '/model/architecture/kind',
  );
  assert.throws(
    () => buildCnn({ ...architecture, filters: [2, 2, 2, 2, 2] }, [16], 10, 3),
    (e: unknown) => e instanceof TrainingError && e.param === '/model/architecture/filters',
  );

  const xs = values(5 * 784, 3);
  const ys = [0, 3, 9, 3, 1];
  const run = (fast: boolean) => {
    const m = buildCnn(architecture, [784], 10, 3);
    const x = tf.tensor2d(xs, [5, 784]);
    const labels = oneHot(tf.tensor1d(ys, 'int32'), 10);
    const result = lossAndGrads(m, fast, x, labels);
    const stats = m
      .getLayer('conv_1_bn')
      .getWeights()
      .map((w) => w.dataSync());
    tf.dispose([x, labels]);
    m.dispose();
    return { ...result, stats };
  };
  const stock = await on('cpu', () => run(false));
  const fast = run(true);
  assert.ok(Math.abs(fast.loss - stock.loss) < 1e-5, `loss ${fast.loss} vs ${stock.loss}`);
  const strip = (k: string) => k.replace(/_\d+$/, '');
  assert.deepEqual(Object.keys(fast.grads).map(strip), Object.keys(stock.grads).map(strip));
  const stockGrads = Object.values(stock.grads);
  Object.values(fast.grads).forEach((g, i) => {
    const reference = stockGrads[i];
    const scale = Math.max(...reference.map(Math.abs));
    const diff = Math.max(...g.map((v, j) => Math.abs(v - reference[j])));
    // A bias before batch norm has a gradient of zero but for rounding: hence the absolute floor.
    assert.ok(diff <= 1e-3 * scale + 5e-5, `gradient ${Object.keys(fast.grads)[i]}: difference ${diff} at scale ${scale}`);
  });
  fast.stats.forEach((s, i) =>
    assert.ok(
      s.every((v, j) => Math.abs(v - stock.stats[i][j]) < 1e-5),
      'batch-norm statistics moved alike',
    ),
  );
});

test("attachNewHead: a fresh Dense output for the new classes, every other weight the base's", async () => {
  const root = await tempDir();
  const base = buildMlp(linear, [20], 5, 1);
  const dir = path.join(root, 'base');
  await saveModel(base, dir);
  const { model, note, newLayers } = await attachNewHead((await loadModel(dir)).model, { units: 3, seed: 9 });
  try {
    assert.deepEqual(newLayers, ['logits_2']);
    assert.ok(model instanceof tf.Sequential, 'a Sequential base stays Sequential');
    assert.deepEqual(
      model.layers.map((l) => l.name),
      ['dense_1', 'dense_2', 'logits_2'],
    );
    assert.deepEqual(model.outputs[0].shape, [null, 3]);
    assert.match(note, /new head on layer 'dense_2' \(8 features\): the base model's layers 'logits' were replaced by 'logits_2' with 3 classes/);
    for (const name of ['dense_1', 'dense_2']) {
      assert.deepEqual(
        model
          .getLayer(name)
          .getWeights()
          .map((w) => w.dataSync()),
        base
          .getLayer(name)
          .getWeights()
          .map((w) => w.dataSync()),
      );
    }
    const kernel = model.getLayer('logits_2').getWeights()[0].dataSync();
    assert.ok(kernel.every((v) => Math.abs(v) <= 1 / Math.sqrt(8)) && kernel.some((v) => v !== 0), 'the head starts like a PyTorch Linear layer');
  } finally {
    model.dispose();
    base.dispose();
  }
  const conv = tf.sequential({
    layers: [tf.layers.reshape({ inputShape: [16], targetShape: [4, 4, 1], name: 'shape' }), tf.layers.conv2d({ filters: 2, kernelSize: 2, name: 'conv' })],
  });
  await saveModel(conv, path.join(root, 'conv'));
  conv.dispose();
  const onConv = await attachNewHead((await loadModel(path.join(root, 'conv'))).model, { units: 3, seed: 1, featureLayer: 'conv', head: { hidden: [4] } });
  try {
    assert.deepEqual(
      onConv.model.layers.map((l) => l.name),
      ['shape', 'conv', 'head_flatten', 'head_dense_1', 'logits'],
    );
    assert.deepEqual(onConv.model.outputs[0].shape, [null, 3]);
  } finally {
    onConv.model.dispose();
  }
  await assert.rejects(attachNewHead((await loadModel(path.join(root, 'conv'))).model, { units: 3, seed: 1, featureLayer: 'nope' }), (e: unknown) => {
    return (
      e instanceof TrainingError &&
      e.code === 'invalid_spec' &&
      e.param === '/strategy/featureLayer' &&
      /no layer named 'nope'; its layers are .*conv/.test(e.message)
    );
  });
});
