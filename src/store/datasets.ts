import type { DatasetError } from '../schemas/dataset-error.js';
import type { Db, Queryable } from './db.js';
import { TenantRecords } from './tenant-records.js';

interface DatasetBase {
  id: string;
  name: string;
  source: Record<string, unknown>;
  createdAt: string;
}

/** Recorded before its data is converted; nothing about the data is known yet. */
export interface ValidatingDataset extends DatasetBase {
  status: 'validating';
}

export interface FailedDataset extends DatasetBase {
  status: 'failed';
  error: DatasetError;
}

export interface ReadyDataset extends DatasetBase {
  status: 'ready';
  numExamples: number;
  featureShape: number[];
  featureDtype: 'uint8' | 'float32';
  /** [h, w, c] for image-like examples */
  imageShape: number[] | null;
  numClasses: number;
  classes: string[];
  classCounts: number[];
  preprocessing: { scale: number; offset: number };
  dir: string;
  /** what its files take on disk, counted against the tenant's storage quota */
  bytes: number;
}

export type DatasetRecord = ValidatingDataset | ReadyDataset | FailedDataset;

/** What a conversion (or a built-in) establishes about a ready dataset. */
export type ReadyFacts = Omit<ReadyDataset, keyof DatasetBase | 'status'>;

interface DatasetRow {
  id: string;
  name: string;
  status: DatasetRecord['status'];
  source: Record<string, unknown>;
  num_examples: number | null;
  feature_shape: number[] | null;
  feature_dtype: ReadyDataset['featureDtype'] | null;
  image_shape: number[] | null;
  num_classes: number | null;
  classes: string[] | null;
  class_counts: number[] | null;
  preprocessing: ReadyDataset['preprocessing'] | null;
  dir: string | null;
  error: DatasetError | null;
  /** bigint: a string from pg */
  bytes: string | number;
  created_at: Date;
}

/** A column the status promises; a row without it is a broken database, not a user error. */
function present<T>(v: T | null, row: DatasetRow, column: string): T {
  if (v === null) throw new Error(`dataset ${row.id} is ${row.status} but its ${column} is null`);
  return v;
}

function toRecord(r: DatasetRow): DatasetRecord {
  const base = { id: r.id, name: r.name, source: r.source, createdAt: r.created_at.toISOString() };
  switch (r.status) {
    case 'validating':
      return { ...base, status: 'validating' };
    case 'failed':
      return { ...base, status: 'failed', error: present(r.error, r, 'error') };
    case 'ready':
      return {
        ...base,
        status: 'ready',
        numExamples: present(r.num_examples, r, 'num_examples'),
        featureShape: present(r.feature_shape, r, 'feature_shape'),
        featureDtype: present(r.feature_dtype, r, 'feature_dtype'),
        imageShape: r.image_shape ?? null,
        numClasses: present(r.num_classes, r, 'num_classes'),
        classes: present(r.classes, r, 'classes'),
        classCounts: present(r.class_counts, r, 'class_counts'),
        preprocessing: present(r.preprocessing, r, 'preprocessing'),
        dir: present(r.dir, r, 'dir'),
        bytes: Number(r.bytes),
      };
  }
}

/** What a dataset records when it becomes ready, as query parameters in the column order insertReady and markReady list. */
function readyValues(d: ReadyFacts): unknown[] {
  return [
    d.numExamples,
    JSON.stringify(d.featureShape),
    d.featureDtype,
    d.numClasses,
    JSON.stringify(d.classes),
    JSON.stringify(d.classCounts),
    JSON.stringify(d.preprocessing),
    d.dir,
    JSON.stringify(d.imageShape),
    d.bytes,
  ];
}

export class DatasetStore extends TenantRecords<DatasetRow, DatasetRecord> {
  constructor(db: Db) {
    super(db, 'datasets', toRecord);
  }

  async insertReady(d: Pick<DatasetBase, 'id' | 'name' | 'source'> & ReadyFacts, tenant = 'default'): Promise<DatasetRecord> {
    const [row] = await this.db.query<DatasetRow>(
      `INSERT INTO datasets (id, name, status, source, tenant, num_examples, feature_shape, feature_dtype, num_classes,
         classes, class_counts, preprocessing, dir, image_shape, bytes)
       VALUES ($1, $2, 'ready', $3::jsonb, $4, $5, $6::jsonb, $7, $8, $9::jsonb, $10::jsonb, $11::jsonb, $12, $13::jsonb, $14) RETURNING *`,
      [d.id, d.name, JSON.stringify(d.source), tenant, ...readyValues(d)],
    );
    return toRecord(row);
  }

  /** An upload or a derived dataset, recorded before its data is converted. */
  async insertValidating(d: Pick<DatasetBase, 'id' | 'name' | 'source'>, tenant = 'default'): Promise<DatasetRecord> {
    const [row] = await this.db.query<DatasetRow>(
      `INSERT INTO datasets (id, name, status, source, tenant, heartbeat_at) VALUES ($1, $2, 'validating', $3::jsonb, $4, now()) RETURNING *`,
      [d.id, d.name, JSON.stringify(d.source), tenant],
    );
    return toRecord(row);
  }

  /**
   * Completes a validating dataset. Returns null when it is no longer validating (deleted
   * meanwhile), so the caller knows the converted files have no owner.
   */
  async markReady(id: string, d: ReadyFacts): Promise<DatasetRecord | null> {
    const [row] = await this.db.query<DatasetRow>(
      `UPDATE datasets SET status = 'ready', num_examples = $2, feature_shape = $3::jsonb, feature_dtype = $4, num_classes = $5,
         classes = $6::jsonb, class_counts = $7::jsonb, preprocessing = $8::jsonb, dir = $9, image_shape = $10::jsonb, bytes = $11
       WHERE id = $1 AND status = 'validating' RETURNING *`,
      [id, ...readyValues(d)],
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

  /** ids of queued or running jobs that read this dataset */
  async activeJobsUsing(id: string): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM jobs WHERE status IN ('queued', 'running', 'paused')
         AND EXISTS (SELECT 1 FROM jsonb_each_text(spec->'data') d WHERE d.value = $1)`,
      [id],
    );
    return rows.map((r) => r.id);
  }

  /** In the caller's transaction, which records the files to remove (src/artifacts/pending-deletes.ts). */
  async delete(q: Queryable, id: string): Promise<void> {
    await q.query('DELETE FROM datasets WHERE id = $1', [id]);
  }
}
