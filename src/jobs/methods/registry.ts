/**
 * The pure part of every method by the kind a spec names it with (see descriptor.ts). A method
 * with rules of its own has its module here; the others are one of the plain descriptors.
 */
import type { JobSpec } from '../../schemas/job.js';
import type { MethodKind, StrategyKind } from '../../schemas/params.js';
import { adabn } from './adabn.js';
import { ON_TARGET, PLAIN, type MethodDescriptor } from './descriptor.js';
import { l2sp } from './l2sp.js';
import { multiSource } from './multi-source.js';

/** Every kind the schema accepts: one missing here fails the build. */
export const METHOD_DESCRIPTORS = {
  full: PLAIN,
  freeze: PLAIN,
  l2sp,
  multi_source: multiSource,
  dann: ON_TARGET,
  coral: ON_TARGET,
  mmd: ON_TARGET,
  adabn,
  pseudo_label: ON_TARGET,
  cdan: ON_TARGET,
  mcc: ON_TARGET,
} satisfies Record<StrategyKind | MethodKind, MethodDescriptor>;

/** The kind of method a spec trains with: its strategy or adaptation method, else `full`. */
export function methodKind(spec: Pick<JobSpec, 'method' | 'strategy'>): StrategyKind | MethodKind {
  return spec.method?.kind ?? spec.strategy?.kind ?? 'full';
}

export const methodOf = (spec: Pick<JobSpec, 'method' | 'strategy'>): MethodDescriptor => METHOD_DESCRIPTORS[methodKind(spec)];

/** Whether each training step of `spec` takes a batch of data.target: its method's do, and any job's with data.targetLabelled. */
export const trainsOnTarget = (spec: JobSpec): boolean => methodOf(spec).trainsOnTarget || spec.data.targetLabelled === true;

/** The methods whose steps train on target batches, for messages. */
export const TARGET_TRAINING_KINDS = (Object.keys(METHOD_DESCRIPTORS) as (StrategyKind | MethodKind)[]).filter((k) => METHOD_DESCRIPTORS[k].trainsOnTarget);
