import type { DatasetError } from '../schemas/dataset.js';
import type { Db } from './db.js';
import { pageOf, type PageResult } from './paging.js';

export interface DatasetRecord {
  id: string;
  name: string;
  status: 'validating' | 'ready' | 'failed';
  source: Record<string, unknown>;
  numExamples: number | null;
  featureShape: number[] | null;
  featureDtype: 'uint8' | 'float32' | null;
  /** [h, w, c] for image-like examples */
  imageShape: number[] | null;
  numClasses: number | null;
  classes: string[] | null;
  classCounts: number[] | null;
  preprocessing: { scale: number; offset: number } | null;
  dir: string | null;
  error: DatasetError | null;
  createdAt: string;
}

interface DatasetRow {
  id: string;
  name: string;
  status: DatasetRecord['status'];
  source: Record<string, unknown>;
  num_examples: number | null;
  feature_shape: number[] | null;
  feature_dtype: DatasetRecord['featureDtype'];
  image_shape: number[] | null;
  num_classes: number | null;
  classes: string[] | null;
  class_counts: number[] | null;
  preprocessing: DatasetRecord['preprocessing'];
  dir: string | null;
  error: DatasetRecord['error'];
  created_at: Date;
}

const toRecord = (r: DatasetRow): DatasetRecord => ({
  id: r.id,
  name: r.name,
  status: r.status,
  source: r.source,
  numExamples: r.num_examples,
  featureShape: r.feature_shape,
  featureDtype: r.feature_dtype,
  imageShape: r.image_shape ?? null,
  numClasses: r.num_classes,
  classes: r.classes,
  classCounts: r.class_counts,
  preprocessing: r.preprocessing,
  dir: r.dir,
  error: r.error,
  createdAt: r.created_at.toISOString(),
});

export type ReadyDataset = Omit<DatasetRecord, 'status' | 'imageShape'> & {
  imageShape?: number[] | null;
  status: 'ready';
  numExamples: number;
  featureShape: number[];
  featureDtype: 'uint8' | 'float32';
  numClasses: number;
  classes: string[];
  classCounts: number[];
  preprocessing: { scale: number; offset: number };
  dir: string;
};

export class DatasetStore {
  constructor(private readonly db: Db) {}

  async insertReady(d: Omit<ReadyDataset, 'createdAt' | 'error' | 'status'>, tenant = 'default'): Promise<DatasetRecord> {
    const [row] = await this.db.query<DatasetRow>(
      `INSERT INTO datasets (id, name, status, source, num_examples, feature_shape, feature_dtype, num_classes,
         classes, class_counts, preprocessing, dir, image_shape, tenant)
       VALUES ($1, $2, 'ready', $3::jsonb, $4, $5::jsonb, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, $12::jsonb, $13) RETURNING *`,
      [d.id, d.name, JSON.stringify(d.source), d.numExamples, JSON.stringify(d.featureShape), d.featureDtype, d.numClasses,
        JSON.stringify(d.classes), JSON.stringify(d.classCounts), JSON.stringify(d.preprocessing), d.dir, JSON.stringify(d.imageShape ?? null), tenant],
    );
    return toRecord(row!);
  }

  /** An upload or a derived dataset, recorded before its data is converted. */
  async insertValidating(d: { id: string; name: string; source: Record<string, unknown> }, tenant = 'default'): Promise<DatasetRecord> {
    const [row] = await this.db.query<DatasetRow>(
      `INSERT INTO datasets (id, name, status, source, tenant, heartbeat_at) VALUES ($1, $2, 'validating', $3::jsonb, $4, now()) RETURNING *`,
      [d.id, d.name, JSON.stringify(d.source), tenant],
    );
    return toRecord(row!);
  }

  /**
   * Completes a validating dataset. Returns null when it is no longer validating (deleted
   * meanwhile), so the caller knows the converted files have no owner.
   */
  async markReady(id: string, d: Omit<ReadyDataset, 'createdAt' | 'error' | 'status' | 'id' | 'name' | 'source'>): Promise<DatasetRecord | null> {
    const [row] = await this.db.query<DatasetRow>(
      `UPDATE datasets SET status = 'ready', num_examples = $2, feature_shape = $3::jsonb, feature_dtype = $4, num_classes = $5,
         classes = $6::jsonb, class_counts = $7::jsonb, preprocessing = $8::jsonb, dir = $9, image_shape = $10::jsonb
       WHERE id = $1 AND status = 'validating' RETURNING *`,
      [id, d.numExamples, JSON.stringify(d.featureShape), d.featureDtype, d.numClasses, JSON.stringify(d.classes),
        JSON.stringify(d.classCounts), JSON.stringify(d.preprocessing), d.dir, JSON.stringify(d.imageShape ?? null)],
    );
    return row ? toRecord(row) : null;
  }

  /** Renews the datasets this process is converting, so no sweep takes them for abandoned. */
  async heartbeat(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query(`UPDATE datasets SET heartbeat_at = now() WHERE id = ANY($1::text[]) AND status = 'validating'`, [ids]);
  }

  /** Fails the validating datasets whose converter stopped renewing them; returns their ids. */
  async failAbandoned(staleAfterMs: number, error: DatasetError): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `UPDATE datasets SET status = 'failed', error = $2::jsonb
       WHERE status = 'validating' AND heartbeat_at < now() - make_interval(secs => $1) RETURNING id`,
      [staleAfterMs / 1000, JSON.stringify(error)],
    );
    return rows.map((r) => r.id);
  }

  async markFailed(id: string, error: DatasetError): Promise<DatasetRecord | null> {
    const [row] = await this.db.query<DatasetRow>(
      `UPDATE datasets SET status = 'failed', error = $2::jsonb WHERE id = $1 AND status = 'validating' RETURNING *`,
      [id, JSON.stringify(error)],
    );
    return row ? toRecord(row) : null;
  }

  /** With `tenant`, another tenant's dataset is as good as missing. */
  async get(id: string, tenant?: string): Promise<DatasetRecord | null> {
    const [row] = await this.db.query<DatasetRow>('SELECT * FROM datasets WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)', [id, tenant ?? null]);
    return row ? toRecord(row) : null;
  }

  async list(limit: number, after?: string, tenant = 'default'): Promise<PageResult<DatasetRecord>> {
    const rows = await this.db.query<DatasetRow>(
      'SELECT * FROM datasets WHERE ($1::text IS NULL OR id < $1) AND tenant = $3 ORDER BY id DESC LIMIT $2',
      [after ?? null, limit + 1, tenant],
    );
    return pageOf(rows.map(toRecord), limit);
  }

  /** ids of queued or running jobs that read this dataset */
  async activeJobsUsing(id: string): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM jobs WHERE status IN ('queued', 'running', 'paused')
         AND EXISTS (SELECT 1 FROM jsonb_each_text(spec->'data') d WHERE d.value = $1)`,
      [id],
    );
    return rows.map((r) => r.id);
  }

  async delete(id: string): Promise<void> {
    await this.db.query('DELETE FROM datasets WHERE id = $1', [id]);
  }
}
