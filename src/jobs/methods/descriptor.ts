/**
 * The pure part of a training method (a fine-tuning strategy or a domain-adaptation method): what
 * the API's spec rules, the cost estimate and the training child need to know of it, without
 * tfjs. The kind and its parameters, defaults and docs are the wire contract, in
 * src/schemas/methods.ts (which cannot import these modules: their rules read JobSpec, which is
 * built from it); the tfjs part (the loss terms, the model it starts from) is
 * workers/training/methods/<kind>.ts. Both registries are typed by the schema's kinds, so a kind
 * without either module fails the build.
 */
import type { Hyperparameters, JobSpec } from '../../schemas/job.js';

/** Reports a rule broken at `pointer` (into the spec) and what was expected. */
export type Problem = (pointer: string, detail: string) => void;

export interface MethodDescriptor {
  /** each training step also takes a batch of data.target (so target augmentation applies, and target rows count in the estimate) */
  trainsOnTarget: boolean;
  /** a domain_adaptation job with this method needs data.target (adabn reads it after training, though no step does) */
  needsTarget: boolean;
  /**
   * what the model starts from, when the method and not model.base or model.architecture decides
   * it (multi_source: model.bases); checks the spec's `model` in place of the general rule
   */
  checkModel?(model: JobSpec['model'], problem: Problem): void;
  /** the method's own rules beyond its parameters (those are checked from the schema's tables) */
  check?(spec: JobSpec, problem: Problem): void;
  /** rules that depend on how it is trained (a penalty's stability under the optimizer) */
  checkTraining?(spec: JobSpec, hp: Hyperparameters, problem: Problem): void;
}

/** A method that trains on the labelled set alone and adds no rule of its own. */
export const PLAIN: MethodDescriptor = { trainsOnTarget: false, needsTarget: false };

/** A domain-adaptation method whose every step aligns source batches with target batches. */
export const ON_TARGET: MethodDescriptor = { trainsOnTarget: true, needsTarget: true };
