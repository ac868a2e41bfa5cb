/**
 * A training method (a fine-tuning strategy or a domain-adaptation method) is a small module
 * the shared training loop consults: it picks the variables to train, may add a loss term to
 * each step (a penalty toward the base weights, a domain loss), and may finish the model after
 * the last epoch. Adding a method means its kind and parameters in src/schemas/methods.ts, its
 * pure part (whether it trains on target batches, its own spec rules) in src/jobs/methods/, and
 * its module here with an entry in METHODS (registry.ts).
 */
import tf = require('@tensorflow/tfjs');
import type { DatasetFiles, TrainingTask } from '../../../src/jobs/task.js';
import type { JobSpec } from '../../../src/schemas/job.js';
import type { Dataset } from '../data.js';
import type { LoadedModel } from '../models.js';
import type { FeatureLayer } from '../network.js';

/** What a method is built from. */
export interface MethodContext {
  model: tf.LayersModel;
  spec: JobSpec;
  /** the layer whose output `StepContext.features` are */
  feature: FeatureLayer;
  /** names of the model's layers that are not the base model's (a new head) */
  newLayers: ReadonlySet<string>;
  /** multi_source: each base model's weights by name; the caller disposes them once the method is built */
  bases?: tf.NamedTensorMap[];
  seed: number;
}

/** One batch's pass as the method sees it; every tensor is inside the gradient tape. */
export interface DomainPass {
  logits: tf.Tensor2D;
  features: tf.Tensor2D;
}

export interface StepContext {
  /** the labelled batch; `labels` are one-hot */
  source: DomainPass & { labels: tf.Tensor2D };
  /** a batch of the target domain, for methods whose descriptor `trainsOnTarget` (src/jobs/methods/) */
  target?: DomainPass;
  /** the share of all training steps done before this one, in [0, 1) */
  progress: number;
}

export interface StepTerms {
  /** added to the task loss */
  loss: tf.Scalar;
  /** per-step values of the method's `signals`; each epoch's metrics report their mean */
  signals: Record<string, tf.Scalar>;
}

export interface Method {
  readonly name: string;
  /** what the optimizer updates; variables not listed stay frozen */
  readonly variables: tf.Variable[];
  /** variables of the method's own (not the model's) by a stable name, saved in checkpoints */
  readonly state: Record<string, tf.Variable>;
  /** the names of the per-step values `terms` returns */
  readonly signals: readonly string[];
  terms?(step: StepContext): StepTerms;
  /** after the last epoch, before the final evaluation (AdaBN's target statistics); returns metrics */
  finish?(ctx: { model: tf.LayersModel; target: Dataset | undefined }): Promise<Record<string, number>>;
  /** releases what the method holds (snapshots of weights, extra layers) */
  dispose(): void;
}

export type MethodFactory = (ctx: MethodContext) => Method;

/** The model training starts from, when the method decides it; `bases` go to the method's context. */
export type StartModel = (task: TrainingTask, train: DatasetFiles) => Promise<{ loaded: LoadedModel; bases: tf.NamedTensorMap[] }>;

/** A method's tfjs part: how it is built, and (multi_source) the model it starts from instead of model.base or model.architecture. */
export interface MethodModule {
  create: MethodFactory;
  startModel?: StartModel;
}

/** The model's trainable weights as the variables the optimizer updates. */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** A method that trains every weight of the model and adds nothing: the base the others extend. */
export function plainMethod(name: string, model: tf.LayersModel): Method {
  return { name, variables: trainableVariables(model), state: {}, signals: [], dispose: () => {} };
}

/** x unchanged, with no gradient flowing back through it: for values a loss term treats as constants. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return tf.customGrad((input) => ({ value: tf.clone(input as tf.Tensor), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) }))(x) as T;
}
