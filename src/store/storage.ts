import type { Queryable } from './db.js';

/**
 * Bytes one tenant keeps on disk: its ready datasets, its models, its jobs' checkpoints, feature caches and
 * predictions files (in the job's result), as recorded when each was written (TENANT_STORAGE_QUOTA_BYTES is
 * checked against this).
 */
export async function storageUsed(q: Queryable, tenant: string): Promise<number> {
  const [row] = await q.query<{ used: string | number }>(
    `SELECT (SELECT coalesce(sum(bytes), 0) FROM datasets WHERE tenant = $1)
          + (SELECT coalesce(sum(bytes), 0) FROM models WHERE tenant = $1)
          + (SELECT coalesce(sum(c.bytes), 0) FROM checkpoints c JOIN jobs j ON j.id = c.job_id WHERE j.tenant = $1)
          + (SELECT coalesce(sum(bytes), 0) FROM feature_caches WHERE tenant = $1)
          + (SELECT coalesce(sum((result->'predictions'->>'bytes')::bigint), 0) FROM jobs WHERE tenant = $1 AND result ? 'predictions') AS used`,
    [tenant],
  );
  return Number(row.used);
}
