import type { Db, Queryable } from './db.js';

export interface Checkpoint {
  epoch: number;
  step: number;
  attempt: number;
  metrics: Record<string, unknown>;
  createdAt: string;
}

interface CheckpointRow {
  epoch: number;
  step: number;
  attempt: number;
  metrics: Record<string, unknown>;
  path: string;
  created_at: Date;
}

export class CheckpointStore {
  constructor(private readonly db: Db) {}

  /** `bytes`, what the checkpoint's files take on disk, counts against the job's tenant's storage quota. */
  async add(q: Queryable, jobId: string, c: { epoch: number; step: number; attempt: number; metrics: object; path: string; bytes?: number }): Promise<void> {
    // a retried attempt may write the same epoch again: keep the newest files
    await q.query(
      `INSERT INTO checkpoints (job_id, epoch, step, attempt, metrics, path, bytes) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
       ON CONFLICT (job_id, epoch, step) DO UPDATE SET attempt = EXCLUDED.attempt, metrics = EXCLUDED.metrics,
         path = EXCLUDED.path, bytes = EXCLUDED.bytes, created_at = now()`,
      [jobId, c.epoch, c.step, c.attempt, JSON.stringify(c.metrics), c.path, c.bytes ?? 0],
    );
  }

  async list(jobId: string): Promise<Checkpoint[]> {
    const rows = await this.db.query<CheckpointRow>(
      'SELECT epoch, step, attempt, metrics, path, created_at FROM checkpoints WHERE job_id = $1 ORDER BY epoch, step',
      [jobId],
    );
    return rows.map((r) => ({ epoch: r.epoch, step: r.step, attempt: r.attempt, metrics: r.metrics, createdAt: r.created_at.toISOString() }));
  }

  /** The last checkpoint of `epoch` (its end, when a pause also wrote one within it), with where its files are. */
  async ofEpoch(jobId: string, epoch: number): Promise<(Checkpoint & { path: string }) | null> {
    const [r] = await this.db.query<CheckpointRow>(
      'SELECT epoch, step, attempt, metrics, path, created_at FROM checkpoints WHERE job_id = $1 AND epoch = $2 ORDER BY step DESC LIMIT 1',
      [jobId, epoch],
    );
    return r ? { epoch: r.epoch, step: r.step, attempt: r.attempt, metrics: r.metrics, path: r.path, createdAt: r.created_at.toISOString() } : null;
  }
}
