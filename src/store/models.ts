import type { Preprocessing } from '../jobs/preprocessing.js';
import type { Db, Queryable } from './db.js';
import { TenantRecords } from './tenant-records.js';

export interface ModelRecord {
  id: string;
  name: string;
  status: 'validating' | 'ready' | 'failed';
  jobId: string | null;
  baseModelId: string | null;
  datasetIds: Record<string, string>;
  metrics: Record<string, unknown> | null;
  inputShape: number[] | null;
  classes: string[] | null;
  preprocessing: Preprocessing | null;
  /** an imported model's origin, `{url}`; null for uploads and trained models */
  source: { url: string } | null;
  /** why a `failed` import failed: a pointer into what was fetched when one thing is to blame */
  error: ModelError | null;
  dir: string;
  createdAt: string;
}

export interface ModelError {
  code: string;
  message: string;
  pointer?: string;
}

interface ModelRow {
  id: string;
  name: string;
  status: ModelRecord['status'];
  job_id: string | null;
  base_model_id: string | null;
  dataset_ids: Record<string, string>;
  metrics: Record<string, unknown> | null;
  input_shape: number[] | null;
  classes: string[] | null;
  preprocessing: ModelRecord['preprocessing'];
  source: ModelRecord['source'];
  error: ModelRecord['error'];
  dir: string;
  created_at: Date;
}

const toRecord = (r: ModelRow): ModelRecord => ({
  id: r.id,
  name: r.name,
  status: r.status,
  jobId: r.job_id,
  baseModelId: r.base_model_id,
  datasetIds: r.dataset_ids,
  metrics: r.metrics,
  inputShape: r.input_shape,
  classes: r.classes,
  preprocessing: r.preprocessing,
  source: r.source,
  error: r.error,
  dir: r.dir,
  createdAt: r.created_at.toISOString(),
});

export class ModelStore extends TenantRecords<ModelRow, ModelRecord> {
  constructor(db: Db) {
    super(db, 'models', toRecord);
  }

  /**
   * A trained model belongs to its job's tenant; an uploaded one to the uploader's. `bytes`, what
   * its files take on disk, counts against the tenant's storage quota.
   */
  async insert(
    q: Queryable,
    m: Omit<ModelRecord, 'createdAt' | 'source' | 'error'> & { bytes?: number; source?: ModelRecord['source'] },
    tenant?: string,
  ): Promise<void> {
    await q.query(
      `INSERT INTO models (id, name, status, job_id, base_model_id, dataset_ids, metrics, input_shape, classes, preprocessing, dir, tenant, bytes, source, heartbeat_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb, $11,
         coalesce($12, (SELECT tenant FROM jobs WHERE id = $4), 'default'), $13, $14::jsonb, CASE WHEN $3 = 'validating' THEN now() END)`,
      [
        m.id,
        m.name,
        m.status,
        m.jobId,
        m.baseModelId,
        JSON.stringify(m.datasetIds),
        JSON.stringify(m.metrics),
        JSON.stringify(m.inputShape),
        JSON.stringify(m.classes),
        JSON.stringify(m.preprocessing),
        m.dir,
        tenant ?? null,
        m.bytes ?? 0,
        JSON.stringify(m.source ?? null),
      ],
    );
  }

  /** A `validating` import became ready: what the check found, and what it takes on disk. */
  /** Whether the import was still validating (not deleted, nor failed as abandoned, meanwhile). */
  async markReady(id: string, m: Pick<ModelRecord, 'inputShape' | 'classes' | 'preprocessing'> & { bytes: number }): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>(
      `UPDATE models SET status = 'ready', input_shape = $2::jsonb, classes = $3::jsonb, preprocessing = $4::jsonb, bytes = $5 WHERE id = $1 AND status = 'validating' RETURNING id`,
      [id, JSON.stringify(m.inputShape), JSON.stringify(m.classes), JSON.stringify(m.preprocessing), m.bytes],
    );
    return rows.length > 0;
  }

  /** Renews the imports this process is running, so no sweep takes them for abandoned. */
  async heartbeat(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query(`UPDATE models SET heartbeat_at = now() WHERE id = ANY($1::text[]) AND status = 'validating'`, [ids]);
  }

  /** Fails the validating imports whose process stopped renewing them; returns their ids. */
  async failAbandoned(staleAfterMs: number, error: ModelError): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `UPDATE models SET status = 'failed', error = $2::jsonb
       WHERE status = 'validating' AND heartbeat_at < now() - make_interval(secs => $1) RETURNING id`,
      [staleAfterMs / 1000, JSON.stringify(error)],
    );
    return rows.map((r) => r.id);
  }

  async markFailed(id: string, error: ModelError): Promise<void> {
    await this.db.query(`UPDATE models SET status = 'failed', error = $2::jsonb WHERE id = $1 AND status = 'validating'`, [id, JSON.stringify(error)]);
  }

  /** ids of unfinished jobs that start from this model (`model.base`, or one of `model.bases`) */
  async activeJobsUsing(id: string): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM jobs WHERE status IN ('queued', 'running', 'paused')
         AND (spec->'model'->>'base' = $1 OR COALESCE(spec->'model'->'bases', '[]'::jsonb) @> to_jsonb(ARRAY[$1::text]))
       ORDER BY id`,
      [id],
    );
    return rows.map((r) => r.id);
  }

  /** In the caller's transaction, which records the files to remove (src/artifacts/pending-deletes.ts). */
  async delete(q: Queryable, id: string): Promise<void> {
    await q.query('DELETE FROM models WHERE id = $1', [id]);
  }
}
