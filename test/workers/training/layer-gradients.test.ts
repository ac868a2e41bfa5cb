/**
 * Every layer type a base model may have (src/artifacts/model-upload/layer-support.ts) has gradients on wasm,
 * and they are the cpu backend's: for each, a small functional model built around the layer, the
 * gradient of a fixed weighted sum of its output with respect to its input and to every trainable
 * weight, computed on both backends from the same weights. On wasm the convolutions' gradients
 * run through the kernels of workers/training/gradients/wasm-kernels.ts, which also makes Identity
 * share its input's buffer (last test).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { selectBackend } from '../../../workers/training/backend.js';
import { TRAINABLE_LAYERS } from '../../../src/artifacts/model-upload/layer-support.js';

before(async () => {
  process.env.TFJS_BACKEND = 'wasm';
  assert.equal(await selectBackend(), 'wasm');
});

/** A model around one layer; `x` the input, `y` its output. */
type Build = (x: tf.SymbolicTensor) => tf.SymbolicTensor;
const conv = (filters: number, name: string) =>
  tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', name, kernelInitializer: tf.initializers.randomUniform({ minval: -0.3, maxval: 0.3, seed: 7 }) });

const CASES: Record<string, { inputShape: number[]; build: Build }[]> = {
  Conv2D: [
    {
      inputShape: [7, 7, 3],
      build: (x) => tf.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }).apply(x) as tf.SymbolicTensor,
    },
    {
      inputShape: [7, 7, 3],
      build: (x) => tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(x) as tf.SymbolicTensor,
    },
    { inputShape: [6, 6, 8], build: (x) => tf.layers.conv2d({ filters: 16, kernelSize: 1 }).apply(x) as tf.SymbolicTensor },
    // strides 1: the kernel gradient by taps over padded grids (wasm-kernels.ts), with channels
    // that fill no SIMD vector, an oblong kernel, and "same" padding one more after than before
    {
      inputShape: [7, 6, 5],
      build: (x) => tf.layers.conv2d({ filters: 7, kernelSize: [3, 2], padding: 'valid', useBias: false }).apply(x) as tf.SymbolicTensor,
    },
    { inputShape: [9, 8, 6], build: (x) => tf.layers.conv2d({ filters: 9, kernelSize: 2, padding: 'same' }).apply(x) as tf.SymbolicTensor },
    // two images of a 14x14 grid: more pixels than a chunk of the taps' products (256)
    { inputShape: [12, 12, 3], build: (x) => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor },
  ],
  DepthwiseConv2D: [
    { inputShape: [7, 7, 4], build: (x) => tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor },
    {
      inputShape: [8, 8, 3],
      build: (x) => tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(x) as tf.SymbolicTensor,
    },
    {
      inputShape: [6, 6, 2],
      build: (x) => tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 3 }).apply(x) as tf.SymbolicTensor,
    },
  ],
  SeparableConv2D: [
    {
      inputShape: [7, 7, 3],
      build: (x) => tf.layers.separableConv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2 }).apply(x) as tf.SymbolicTensor,
    },
  ],
  BatchNormalization: [
    {
      inputShape: [5, 5, 4],
      build: (x) => tf.layers.batchNormalization({ gammaInitializer: 'randomNormal' }).apply(conv(4, 'c').apply(x)) as tf.SymbolicTensor,
    },
  ],
  ReLU: [{ inputShape: [5, 5, 3], build: (x) => tf.layers.reLU({ maxValue: 0.5 }).apply(conv(3, 'c').apply(x)) as tf.SymbolicTensor }],
  ZeroPadding2D: [
    {
      inputShape: [5, 5, 3],
      build: (x) =>
        conv(2, 'c').apply(
          tf.layers
            .zeroPadding2d({
              padding: [
                [0, 1],
                [1, 0],
              ],
            })
            .apply(x),
        ) as tf.SymbolicTensor,
    },
  ],
  Add: [{ inputShape: [5, 5, 3], build: (x) => tf.layers.add().apply([conv(3, 'a').apply(x) as tf.SymbolicTensor, x]) as tf.SymbolicTensor }],
  Concatenate: [
    {
      inputShape: [5, 5, 3],
      build: (x) =>
        tf.layers.concatenate().apply([conv(2, 'a').apply(x) as tf.SymbolicTensor, conv(4, 'b').apply(x) as tf.SymbolicTensor]) as tf.SymbolicTensor,
    },
  ],
  GlobalAveragePooling2D: [{ inputShape: [5, 5, 3], build: (x) => tf.layers.globalAveragePooling2d({}).apply(conv(4, 'c').apply(x)) as tf.SymbolicTensor }],
  GlobalMaxPooling2D: [{ inputShape: [5, 5, 3], build: (x) => tf.layers.globalMaxPooling2d({}).apply(conv(4, 'c').apply(x)) as tf.SymbolicTensor }],
  AveragePooling2D: [
    { inputShape: [6, 6, 3], build: (x) => tf.layers.averagePooling2d({ poolSize: 3, strides: 2 }).apply(conv(4, 'c').apply(x)) as tf.SymbolicTensor },
  ],
  MaxPooling2D: [
    { inputShape: [7, 7, 3], build: (x) => tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }).apply(conv(4, 'c').apply(x)) as tf.SymbolicTensor },
    { inputShape: [7, 7, 3], build: (x) => tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }).apply(conv(4, 'c').apply(x)) as tf.SymbolicTensor },
    // tied maxima: relu makes whole windows 0
    { inputShape: [4, 4, 2], build: (x) => tf.layers.maxPooling2d({ poolSize: 2 }).apply(tf.layers.reLU({}).apply(x)) as tf.SymbolicTensor },
    // windows that do not overlap, on wasm our kernel: 6 channels (four at a time, two left over), a row and a column no window covers
    { inputShape: [5, 7, 6], build: (x) => tf.layers.maxPooling2d({ poolSize: 2 }).apply(tf.layers.reLU({}).apply(x)) as tf.SymbolicTensor },
  ],
  Dropout: [{ inputShape: [12], build: (x) => tf.layers.dropout({ rate: 0.5, seed: 3 }).apply(tf.layers.dense({ units: 6 }).apply(x)) as tf.SymbolicTensor }],
  Flatten: [{ inputShape: [3, 3, 2], build: (x) => tf.layers.dense({ units: 3 }).apply(tf.layers.flatten().apply(x)) as tf.SymbolicTensor }],
  Reshape: [{ inputShape: [18], build: (x) => conv(2, 'c').apply(tf.layers.reshape({ targetShape: [3, 3, 2] }).apply(x)) as tf.SymbolicTensor }],
  Activation: [
    { inputShape: [8], build: (x) => tf.layers.activation({ activation: 'relu6' }).apply(tf.layers.dense({ units: 5 }).apply(x)) as tf.SymbolicTensor },
  ],
  Dense: [{ inputShape: [3, 4], build: (x) => tf.layers.dense({ units: 5, activation: 'softmax' }).apply(x) as tf.SymbolicTensor }],
};

/** The gradients of sum(output · r) by input and by each trainable weight, in training mode, on `backend`. */
async function gradients(
  backend: string,
  inputShape: number[],
  build: Build,
  weights: Float32Array[] | undefined,
): Promise<{ grads: Float32Array[]; weights: Float32Array[] }> {
  await tf.setBackend(backend);
  const input = tf.input({ shape: inputShape });
  const model = tf.model({ inputs: input, outputs: build(input) });
  if (weights) model.setWeights(model.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[])));
  const own = await Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
  const x = tf.tensor(
    Float32Array.from({ length: 2 * inputShape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 1.7) * 2),
    [2, ...inputShape],
  );
  const outShape = model.outputs[0].shape.slice(1) as number[];
  const r = tf.tensor(
    Float32Array.from({ length: 2 * outShape.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i * 0.9)),
    [2, ...outShape],
  );
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const f = (xs: tf.Tensor) => tf.sum(tf.mul(model.apply(xs, { training: true }) as tf.Tensor, r)) as tf.Scalar;
  const dx = tf.grad(f)(x);
  const { grads } = variables.length > 0 ? tf.variableGrads(() => f(x), variables) : { grads: {} as tf.NamedTensorMap };
  const out = [await dx.data(), ...(await Promise.all(variables.map((v) => grads[v.name].data())))] as Float32Array[];
  tf.dispose([x, r, dx, ...Object.values(grads)]);
  model.dispose();
  return { grads: out, weights: own };
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  const scale = Math.max(1, ...expected.map(Math.abs));
  const worst = actual.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0);
  assert.ok(worst <= 1e-4 * scale, `${what}: differs by up to ${worst} (scale ${scale})`);
  assert.ok(
    expected.some((v) => v !== 0),
    `${what}: the cpu gradient is all zeros, so this case shows nothing`,
  );
}

test('every trainable layer type has a case here', () => {
  const untested = [...TRAINABLE_LAYERS].filter((c) => !CASES[c] && c !== 'InputLayer');
  assert.deepEqual(untested, []);
});

for (const [className, cases] of Object.entries(CASES)) {
  test(`${className}: gradients on wasm match the cpu backend's`, async () => {
    for (const [i, c] of cases.entries()) {
      const cpu = await gradients('cpu', c.inputShape, c.build, undefined);
      const wasm = await gradients('wasm', c.inputShape, c.build, cpu.weights);
      cpu.grads.forEach((g, k) => assertClose(wasm.grads[k], g, `${className} case ${i}, ${k === 0 ? 'input' : `weight ${k - 1}`}`));
    }
  });
}

test("Identity on wasm (tf.clone, customGrad's saved tensors) shares its input's buffer, which lives until its last reference goes", () => {
  const start = tf.memory().numTensors;
  const x = tf.tensor1d([1, -2, 3.5]);
  const copy = tf.clone(x);
  assert.equal(copy.dataId, x.dataId, 'the same buffer, not a copy');
  x.dispose();
  assert.deepEqual(Array.from(copy.dataSync()), [1, -2, 3.5], 'readable after the original is disposed');
  copy.dispose();
  assert.equal(tf.memory().numTensors, start);
});
