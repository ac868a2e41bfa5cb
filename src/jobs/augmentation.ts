/**
 * Which batches of a job are augmented (hyperparameters.augment), as pure rules of the spec:
 * the training child augments by them, and a frozen-feature cache must not be used when they
 * hold (the frozen part's outputs then differ at every step).
 */
import type { Augment } from '../schemas/augment.js';
import type { JobSpec } from '../schemas/job.js';

/** The changes augment can make; `apply` only says where. */
const CHANGES = ['flip', 'rotate', 'translate', 'scale', 'brightness', 'contrast', 'noise'] as const satisfies readonly (keyof Augment)[];
/** The changes that move pixels, which need examples that are images. */
const GEOMETRIC_CHANGES = ['flip', 'rotate', 'translate', 'scale'] as const satisfies readonly (keyof Augment)[];

const asks = (augment: Augment, changes: readonly (keyof Augment)[]) => changes.some((k) => augment[k] !== undefined && augment[k] !== 0);

/** Whether `augment` changes anything (a zero bound changes nothing). */
export const changesAnything = (augment: Augment) => asks(augment, CHANGES);

/** Whether `augment` flips, rotates, translates or scales: changes that need image examples. */
export const movesPixels = (augment: Augment) => asks(augment, GEOMETRIC_CHANGES);

/** The job's batches that are augmented: its labelled training batches (`source`) and/or its target batches. */
export function augmentedRoles(spec: Pick<JobSpec, 'type' | 'hyperparameters'>): ('source' | 'target')[] {
  const augment = spec.hyperparameters?.augment;
  if (augment === undefined || !changesAnything(augment)) return [];
  return spec.type === 'domain_adaptation' ? (augment.apply ?? ['source']) : ['source'];
}

/** Whether the job feeds its model examples that differ from the stored ones (so features of a frozen part cannot be cached). */
export function augmentsInput(spec: Pick<JobSpec, 'type' | 'hyperparameters'>): boolean {
  return augmentedRoles(spec).length > 0;
}
