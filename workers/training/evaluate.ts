import tf = require('@tensorflow/tfjs');
import { Batcher, loadDataset, type Dataset } from './data.js';
import { inferenceBatchRows } from './eval-batch-rows.js';
import type { DatasetFiles, TestReport } from '../../src/jobs/task.js';

export interface Evaluation {
  /** mean softmax cross-entropy per example */
  loss: number;
  /** fraction of examples whose highest logit is their label */
  accuracy: number;
  /** with `report`: the per-class breakdown */
  report?: TestReport;
}

export interface EvaluateOptions {
  /** the spec field the data came from, blamed if its files are broken; default /data/test */
  param?: string;
  /** also count the confusion matrix and per-class accuracy */
  report?: boolean;
}

/**
 * Evaluates a logits model on a dataset in stored order (inference mode, as a user of the
 * saved model would run it). Sums stay on the device and are read once at the end.
 * Given `DatasetFiles`, loads them first.
 */
export async function evaluate(model: tf.LayersModel, data: Dataset | DatasetFiles, opts: EvaluateOptions = {}): Promise<Evaluation> {
  const dataset = 'features' in data ? data : await loadDataset(data, opts.param ?? '/data/test');
  const numClasses = dataset.files.numClasses;
  const batcher = new Batcher(dataset, inferenceBatchRows(model, dataset.files));
  const sums = deviceSums();
  // Counts are exact in float32 up to 2^24 examples per cell.
  const confusion = opts.report ? tf.tidy(() => tf.variable(tf.zeros([numClasses, numClasses]), false)) : undefined;
  try {
    for (let step = 0; step < batcher.steps; step++) {
      const batch = batcher.fill(step);
      tf.tidy(() => {
        const x = tf.tensor(batch.x, batch.shape, 'float32');
        const y = tf.tensor1d(batch.y, 'int32');
        const logits = model.apply(x, { training: false }) as tf.Tensor2D;
        const truth = oneHot(y, numClasses);
        const loss = tf.losses.softmaxCrossEntropy(truth, logits, undefined, undefined, tf.Reduction.SUM);
        sums.loss.assign(tf.add(sums.loss, loss));
        sums.correct.assign(tf.add(sums.correct, countCorrect(logits, y)));
        if (confusion) confusion.assign(tf.add(confusion, tf.matMul(tf.transpose(truth), oneHot(tf.argMax(logits, 1) as tf.Tensor1D, numClasses))));
      });
      // Lets the process handle IPC (cancel requests, heartbeats) between batches.
      await new Promise(setImmediate);
    }
    const [loss, correct] = await Promise.all([sums.loss.data(), sums.correct.data()]);
    const n = dataset.labels.length;
    const result: Evaluation = { loss: loss[0] / n, accuracy: correct[0] / n };
    if (confusion) result.report = testReport((await confusion.array()) as number[][], dataset.files.classes);
    return result;
  } finally {
    sums.loss.dispose();
    sums.correct.dispose();
    confusion?.dispose();
  }
}

/** Per-class accuracy from a confusion matrix (rows: true class): null for a class with no examples. */
export function testReport(confusionMatrix: number[][], classes: string[]): TestReport {
  const perClassAccuracy = confusionMatrix.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? null : row[c] / total;
  });
  return { classes, perClassAccuracy, confusionMatrix };
}

/**
 * Float one-hot labels. Built as int32 and cast, because the wasm backend's OneHot kernel
 * writes integer bits into a float32 output (tfjs 4.22), giving labels of ~1e-45.
 */
export function oneHot(labels: tf.Tensor1D, numClasses: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(labels, numClasses), 'float32') as tf.Tensor2D);
}

/** How many rows of `logits` have their highest score at their label, as an int32 scalar. */
export function countCorrect(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32'));
}

/** A float loss sum and an int32 count of correct predictions, at zero, kept on the device. */
export function deviceSums(): { loss: tf.Variable; correct: tf.Variable } {
  // Inside tidy so the initial scalars are released; the variables themselves outlive it.
  return tf.tidy(() => ({ loss: tf.variable(tf.scalar(0), false), correct: tf.variable(tf.scalar(0, 'int32'), false) }));
}
