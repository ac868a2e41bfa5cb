/**
 * A training method (a fine-tuning strategy or a domain-adaptation method) is a small module
 * the shared training loop consults: it picks the variables to train and may add loss terms.
 * Adding a method means one file here, one entry in METHODS, and its schema.
 */
import type * as tf from '@tensorflow/tfjs';
import { TrainingError, type TrainingTask } from '../task.js';
import { full } from './full.js';

/** One training step as a method sees it; every tensor is inside the gradient tape. */
export interface StepContext {
  /** the preprocessed input batch */
  x: tf.Tensor;
  /** one-hot labels, [batch, classes] */
  labels: tf.Tensor2D;
  logits: tf.Tensor2D;
  /** mean softmax cross-entropy of the batch */
  taskLoss: tf.Scalar;
}

export interface Method {
  readonly name: string;
  /** what the optimizer updates; variables not listed stay frozen */
  readonly variables: tf.Variable[];
  /** a term added to the task loss, e.g. a penalty toward the base weights or a domain loss */
  extraLoss?(step: StepContext): tf.Scalar;
  /** releases what the method holds (snapshots of weights, extra heads) */
  dispose(): void;
}

export type MethodFactory = (model: tf.LayersModel, task: TrainingTask) => Method;

const METHODS: Record<string, MethodFactory> = { full };

/** The method the job's spec names; a job without a strategy trains every weight. */
export function createMethod(model: tf.LayersModel, task: TrainingTask): Method {
  const kind = task.spec.strategy?.kind ?? 'full';
  const factory = METHODS[kind];
  if (factory === undefined) {
    throw new TrainingError('invalid_spec', `strategy '${kind}' is not implemented; expected one of ${Object.keys(METHODS).join(', ')}`, {
      param: '/strategy/kind',
    });
  }
  return factory(model, task);
}
