/**
 * Where cached outputs of frozen layers live: `<root>/features/<baseModelId>/<datasetId>/<key>/`,
 * the key a hash of everything else the outputs depend on (the cut layer, the preprocessing, the
 * backend). By base and dataset first, so that removing either removes its caches with one
 * directory each.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const FEATURE_CACHE_FILE = 'features.bin';

export function featureCacheDir(featuresRoot: string, baseModelId: string, datasetId: string, key: string): string {
  return join(featuresRoot, baseModelId, datasetId, key);
}

/** Removes every cache of a base model. */
export async function removeModelFeatures(featuresRoot: string, modelId: string): Promise<void> {
  await rm(join(featuresRoot, modelId), { recursive: true, force: true });
}

/** Removes every cache of a dataset, whatever its base. */
export async function removeDatasetFeatures(featuresRoot: string, datasetId: string): Promise<void> {
  const bases = await readdir(featuresRoot).catch(() => [] as string[]);
  await Promise.all(bases.map((base) => rm(join(featuresRoot, base, datasetId), { recursive: true, force: true })));
}
