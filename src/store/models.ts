import type { Db, Queryable } from './db.js';
import { pageOf, type PageResult } from './paging.js';

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
  preprocessing: { scale: number; offset: number } | null;
  dir: string;
  createdAt: string;
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
  dir: r.dir,
  createdAt: r.created_at.toISOString(),
});

export class ModelStore {
  constructor(private readonly db: Db) {}

  async insert(q: Queryable, m: Omit<ModelRecord, 'createdAt'>): Promise<void> {
    await q.query(
      `INSERT INTO models (id, name, status, job_id, base_model_id, dataset_ids, metrics, input_shape, classes, preprocessing, dir)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb, $11)`,
      [m.id, m.name, m.status, m.jobId, m.baseModelId, JSON.stringify(m.datasetIds), JSON.stringify(m.metrics),
        JSON.stringify(m.inputShape), JSON.stringify(m.classes), JSON.stringify(m.preprocessing), m.dir],
    );
  }

  async get(id: string): Promise<ModelRecord | null> {
    const [row] = await this.db.query<ModelRow>('SELECT * FROM models WHERE id = $1', [id]);
    return row ? toRecord(row) : null;
  }

  async list(limit: number, after?: string): Promise<PageResult<ModelRecord>> {
    const rows = await this.db.query<ModelRow>(
      'SELECT * FROM models WHERE ($1::text IS NULL OR id < $1) ORDER BY id DESC LIMIT $2',
      [after ?? null, limit + 1],
    );
    return pageOf(rows.map(toRecord), limit);
  }
}
