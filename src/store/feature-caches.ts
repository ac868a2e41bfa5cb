import type { Queryable } from './db.js';

/** The feature caches on disk (src/artifacts/feature-cache.ts), recorded for the storage quota. */
export class FeatureCacheStore {
  /**
   * Records a cache a job built, as its tenant's; a cache rebuilt at the same path replaces the
   * row. The row goes when its base model or dataset is deleted (the caller removes the files).
   */
  async add(q: Queryable, c: { path: string; jobId: string; baseModelId: string; datasetId: string; bytes: number }): Promise<void> {
    await q.query(
      `INSERT INTO feature_caches (path, tenant, base_model_id, dataset_id, bytes)
       VALUES ($1, coalesce((SELECT tenant FROM jobs WHERE id = $2), 'default'), $3, $4, $5)
       ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes, created_at = now()`,
      [c.path, c.jobId, c.baseModelId, c.datasetId, c.bytes],
    );
  }

  /** The base models with a cache recorded on `datasetId`. */
  async basesOf(q: Queryable, datasetId: string): Promise<string[]> {
    const rows = await q.query<{ base_model_id: string }>('SELECT DISTINCT base_model_id FROM feature_caches WHERE dataset_id = $1', [datasetId]);
    return rows.map((r) => r.base_model_id);
  }
}
