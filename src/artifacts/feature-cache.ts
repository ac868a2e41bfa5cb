/**
 * Where cached outputs of frozen layers live: `<root>/features/<baseModelId>/<datasetId>/<key>/`,
 * the key a hash of everything else the outputs depend on (the cut layer, the preprocessing, the
 * backend). By base and dataset first, so that removing either removes its caches with one
 * directory each. With an object store each cache is an artifact like a checkpoint: published
 * when built, fetched with the (base, dataset)'s others before an attempt (task-artifacts.ts).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const FEATURE_CACHE_FILE = 'features.bin';

/** The caches of one base model on one dataset. */
export function featureCachesDir(featuresRoot: string, baseModelId: string, datasetId: string): string {
  return join(featuresRoot, baseModelId, datasetId);
}

export function featureCacheDir(featuresRoot: string, baseModelId: string, datasetId: string, key: string): string {
  return join(featureCachesDir(featuresRoot, baseModelId, datasetId), key);
}

/** Every cache of a base model. */
export function modelFeaturesDir(featuresRoot: string, modelId: string): string {
  return join(featuresRoot, modelId);
}

/**
 * The directories holding a dataset's caches: under each base that recorded one (`recordedBases`,
 * from the store, which knows those on other hosts) and each base with a directory here.
 */
export async function datasetFeatureDirs(featuresRoot: string, datasetId: string, recordedBases: readonly string[]): Promise<string[]> {
  const here = await readdir(featuresRoot).catch(() => [] as string[]);
  return [...new Set([...recordedBases, ...here])].map((base) => featureCachesDir(featuresRoot, base, datasetId));
}
