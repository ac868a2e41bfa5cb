/**
 * One training step of the shared loop: forward, the task's softmax cross-entropy on logits, the
 * method's terms, gradients, optimizer update.
 */
import tf = require('@tensorflow/tfjs');
import type { Batch } from './data.js';
import type { DenseStep } from './dense-step.js';
import { softmaxCrossEntropy } from './loss.js';
import type { Method } from './methods/method.js';
import type { Forward } from './network.js';

/** The per-epoch mean of the target's cross-entropy, when data.targetLabelled. */
export const TARGET_LOSS = 'targetLoss';

/**
 * Running sums of an epoch. The task's come back to the host with each step's logits; the
 * method's signals stay on the device, so that a step never waits for them.
 */
export interface EpochSums {
  loss: number;
  correct: number;
  /** per method signal, the sum of its per-step values */
  signals: Record<string, tf.Variable>;
}

/** What a step needs besides its batches. */
export interface StepSetup {
  forward: Forward;
  method: Method;
  optimizer: tf.Optimizer;
  sums: EpochSums;
  numClasses: number;
  /** whether the target batch's labels are trained on too (data.targetLabelled) */
  targetLabelled: boolean;
  /** the same step without tfjs's ops, for a network of dense layers trained on its own (dense-step.ts) */
  dense: DenseStep | undefined;
}

/** Signal sums at zero, one per name, on the device. */
export function signalSums(names: readonly string[]): Record<string, tf.Variable> {
  // Inside tidy so the initial scalars are released; the variables themselves outlive it.
  return tf.tidy(() => Object.fromEntries(names.map((name) => [name, tf.variable(tf.scalar(0), false)])));
}

/** One step on `batch` (and `target`, for methods that train on it); `progress` is the share of all steps done before it. */
export function trainStep(setup: StepSetup, batch: Batch, target: Batch | undefined, progress: number): void {
  const { sums, method, forward, numClasses } = setup;
  if (setup.dense !== undefined && target === undefined) return setup.dense.run(batch, sums, setup.optimizer);
  const examples = (b: Batch) => tf.tensor(b.x, b.shape, 'float32');
  // The update runs after the step's tensors are released, so that their memory is free for the new values.
  const grads = tf.tidy(() => {
    const x = examples(batch);
    const xt = target && examples(target);
    // Source and target go through the model as one batch: one pass, and batch norm sees both
    // domains. Joined outside the gradient tape, because the forward may keep its input for the backward.
    const input = xt ? tf.concat([x, xt]) : x;
    const { grads } = tf.variableGrads(() => {
      const out = forward(input);
      const rows = (t: tf.Tensor2D, from: number, count: number) => tf.slice(t, [from, 0], [count, -1]);
      const logits = xt ? rows(out.logits, 0, batch.size) : out.logits;
      const features = xt ? rows(out.features, 0, batch.size) : out.features;
      const task = softmaxCrossEntropy(logits, batch.y);
      sums.loss += task.sum;
      sums.correct += task.correct;
      let loss: tf.Scalar = task.loss;
      const targetPass = xt && {
        logits: rows(out.logits, batch.size, target.size),
        features: rows(out.features, batch.size, target.size),
      };
      const signals: Record<string, tf.Scalar> = {};
      if (targetPass && setup.targetLabelled) {
        signals[TARGET_LOSS] = tf.losses.softmaxCrossEntropy(tf.tensor2d(target.oneHot, [target.size, numClasses]), targetPass.logits) as tf.Scalar;
        loss = tf.add(loss, signals[TARGET_LOSS]);
      }
      // the one-hot labels only for a method with terms: the task's loss reads batch.y on the host
      const terms = method.terms?.({
        source: { labels: tf.tensor2d(batch.oneHot, [batch.size, numClasses]), logits, features },
        ...(targetPass ? { target: targetPass } : {}),
        progress,
      });
      if (terms) {
        Object.assign(signals, terms.signals);
        loss = tf.add(loss, terms.loss);
      }
      for (const [name, value] of Object.entries(signals)) sums.signals[name].assign(tf.add(sums.signals[name], value));
      return loss;
    }, method.variables);
    return grads;
  });
  try {
    setup.optimizer.applyGradients(grads);
  } finally {
    tf.dispose(Object.values(grads));
  }
}
