/**
 * When a job may train on cached outputs of its frozen part (the feature cache), as far as the
 * spec tells; the model decides the rest in the training child (workers/training/feature-cache.ts:
 * a single cut, no dropout before it). Pure: shared by the child and the docs' promises.
 */
import type { FeatureCacheReport, JobSpec } from '../schemas/job.js';
import { augmentsInput } from './augmentation.js';

export type { FeatureCacheReport };

/** Beyond this the cached features would crowd the training child's memory: the job runs uncached. */
export const FEATURE_CACHE_MAX_BYTES = 512 * 1024 * 1024;

/**
 * Why a job's spec rules out the feature cache; undefined when the model may still allow it.
 * Only the freeze strategy leaves a part of the network untouched by training: full and l2sp
 * train every layer, and so does every domain-adaptation method (even those that act on the
 * features after a cut, like coral or mmd, also train the layers before it; adabn re-estimates
 * the batch-norm statistics of every layer on the target).
 */
export function featureCacheRefusal(spec: JobSpec): string | undefined {
  if (spec.type !== 'finetune') return `a ${spec.type} job trains every layer; only a finetune job with strategy freeze has a frozen part to cache`;
  const kind = spec.strategy?.kind ?? 'full';
  if (kind !== 'freeze') return `strategy ${kind} trains every layer; only strategy freeze has a frozen part to cache`;
  if (augmentsInput(spec)) return "hyperparameters.augment changes the inputs at every step, so the frozen part's outputs are never the same twice";
  return undefined;
}

/** One line for the job's log: what happened to the cache and what it cost. */
export function describeFeatureCache(r: FeatureCacheReport): string {
  const mib = r.bytes === undefined ? '' : ` (${(r.bytes / 2 ** 20).toFixed(1)} MiB)`;
  if (r.status === 'built')
    return `feature cache built: the outputs of layer '${r.layer}' for every training example${mib} in ${r.seconds.toFixed(2)} s; epochs run the trained layers only`;
  if (r.status === 'reused')
    return `feature cache reused: the outputs of layer '${r.layer}'${mib} read in ${r.seconds.toFixed(2)} s; epochs run the trained layers only`;
  return `feature cache unused: ${r.reason}; every epoch runs the whole network`;
}
