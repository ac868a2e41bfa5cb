import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { selectBackend } from '../../../workers/training/backend.js';
import { countCorrect, oneHot } from '../../../workers/training/evaluate.js';
import { softmaxCrossEntropy } from '../../../workers/training/loss.js';
import './fixtures.js';

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
});

test("softmaxCrossEntropy gives tf.losses.softmaxCrossEntropy's loss and gradient, and countCorrect's count", () => {
  const start = tf.memory().numTensors;
  // Logits far apart (a softmax of 0 and 1) and large, tied rows (the first maximum counts), a class count that is not 10.
  const values = [
    [0, 0, 0, 0, 0],
    [100, -100, 3, 2, 1],
    [-50, -50, 7, 7, -1],
    [0.1, 0.2, 0.3, 0.2, 0.1],
    [30, 29, 0, 0, 0],
    [2, 1, 0, -1, -2],
  ];
  const labels = Int32Array.from([0, 1, 3, 2, 0, 4]);
  const run = (loss: (logits: tf.Tensor2D) => { loss: tf.Scalar; correct: number }) => {
    const logits = tf.tidy(() => tf.variable(tf.tensor2d(values)));
    let correct = 0;
    // Scaled, so that the gradient also shows the upstream gradient applied.
    const { value, grads } = tf.variableGrads(() => {
      const result = loss(logits);
      correct = result.correct;
      return tf.mul(result.loss, 3) as tf.Scalar;
    }, [logits]);
    const out = { value: value.dataSync()[0], grad: Array.from(grads[logits.name].dataSync()), correct };
    tf.dispose([value, logits, ...Object.values(grads)]);
    return out;
  };
  const ours = run((logits) => softmaxCrossEntropy(logits, labels));
  const stock = run((logits) =>
    tf.tidy(() => {
      const y = tf.tensor1d(labels, 'int32');
      return { loss: tf.losses.softmaxCrossEntropy(oneHot(y, 5), logits) as tf.Scalar, correct: countCorrect(logits, y).dataSync()[0] };
    }),
  );
  assert.ok(Math.abs(ours.value - stock.value) <= 1e-6 * Math.abs(stock.value), `loss ${ours.value} vs ${stock.value}`);
  const scale = Math.max(...stock.grad.map(Math.abs));
  ours.grad.forEach((g, i) => assert.ok(Math.abs(g - stock.grad[i]) <= 1e-5 * scale, `gradient ${i}: ${g} vs ${stock.grad[i]}`));
  assert.equal(ours.correct, stock.correct);
  assert.equal(ours.correct, 3);
  assert.equal(tf.memory().numTensors, start);
});

test('the upstream gradient multiplies the loss gradient on the host with the bits of the Multiply kernel it replaces', () => {
  const logits = tf.variable(tf.tensor2d([1.5, -2, 0.25, 3, 0.1, 7, -1, 2, 0.3, 0.2, 0.1, -4], [3, 4]));
  const labels = Int32Array.from([2, 0, 3]);
  const grad = (scale: number) => {
    const { value, grads } = tf.variableGrads(() => tf.mul(softmaxCrossEntropy(logits, labels).loss, scale) as tf.Scalar, [logits]);
    const bits = new Uint32Array(Float32Array.from(grads[logits.name].dataSync()).buffer);
    tf.dispose([value, ...Object.values(grads)]);
    return bits;
  };
  try {
    const unscaled = new Float32Array(grad(1).buffer);
    for (const scale of [3, 0.1, -1e-3]) {
      const kernel = tf.tidy(() => tf.mul(tf.scalar(scale), tf.tensor2d(unscaled, [3, 4])).dataSync());
      assert.deepEqual(grad(scale), new Uint32Array(Float32Array.from(kernel).buffer), `upstream gradient ${scale}`);
    }
  } finally {
    logits.dispose();
  }
});
