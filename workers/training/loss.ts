import tf = require('@tensorflow/tfjs');

/** A labelled batch's task loss, and its figures for the epoch's metrics. */
export interface TaskLoss {
  /** mean softmax cross-entropy over the batch, differentiable with respect to the logits */
  loss: tf.Scalar;
  /** the cross-entropy summed over the batch */
  sum: number;
  /** how many rows have their highest logit (the first, on ties) at their label */
  correct: number;
}

/**
 * tf.losses.softmaxCrossEntropy(oneHot(labels), logits) with its default mean reduction, and the
 * batch's loss sum and correct count, computed on the host from the logits read back once. On the
 * backends the service trains on (wasm, tfjs-node, cpu) a kernel has run by the time it returns,
 * so the read is a copy of rows × classes values, where the same loss, gradient and counts on the
 * device take some 40 kernels, each with tfjs's per-kernel overhead: about a quarter of the seed
 * MLP's step on wasm. The gradient is (softmax(logits) - oneHot(labels)) / rows, computed in
 * double precision, times the incoming gradient in float32.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: Int32Array): TaskLoss {
  const [rows, classes] = logits.shape;
  const result = { sum: 0, correct: 0 };
  const loss = tf.customGrad((input) => {
    const grad = new Float32Array(rows * classes);
    Object.assign(result, crossEntropyOnHost((input as tf.Tensor2D).dataSync() as Float32Array, labels, { rows, classes, grad }));
    const gradFunc = (dy: tf.Tensor) => {
      // dy·grad on the host, a float32 product as the Multiply kernel rounds it (the double
      // product of two float32 values is exact, so fround rounds once): one kernel fewer.
      const scale = dy.dataSync()[0];
      for (let k = 0; k < grad.length; k++) grad[k] = Math.fround(scale * grad[k]);
      return tf.tensor2d(grad, [rows, classes]);
    };
    return { value: tf.scalar(result.sum / rows), gradFunc };
  })(logits);
  return { loss, ...result };
}

/**
 * The rule of softmaxCrossEntropy on the host, for `rows` rows of `classes` logits: the summed
 * cross-entropy and the correct count, and into `grad` the gradient of the mean, in double
 * precision and stored as float32. Shared with the step of a network of dense layers
 * (dense-step.ts), which reads the logits where they lie in the wasm heap.
 */
export function crossEntropyOnHost(
  values: Float32Array,
  labels: Int32Array,
  o: { rows: number; classes: number; grad: Float32Array },
): { sum: number; correct: number } {
  const { rows, classes, grad } = o;
  const exps = new Float64Array(classes);
  let sum = 0;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    const row = r * classes;
    let max = -Infinity;
    let best = 0;
    for (let c = 0; c < classes; c++) {
      if (values[row + c] > max) {
        max = values[row + c]!;
        best = c;
      }
    }
    let total = 0;
    for (let c = 0; c < classes; c++) total += exps[c] = Math.exp(values[row + c] - max);
    const label = labels[r];
    sum += max + Math.log(total) - values[row + label];
    if (best === label) correct++;
    for (let c = 0; c < classes; c++) grad[row + c] = (exps[c] / total - (c === label ? 1 : 0)) / rows;
  }
  return { sum, correct };
}
