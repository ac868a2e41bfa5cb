import type { Db, Queryable } from './db.js';

export interface PendingDelete {
  path: string;
  attempts: number;
}

/** Artifact directories still to remove after their records went (migrations/013_pending_deletes.sql). */
export class PendingDeleteStore {
  constructor(private readonly db: Db) {}

  /** Records `paths` (relative to the artifacts root) as to be removed; called in the transaction that deletes their records. */
  async add(q: Queryable, paths: readonly string[]): Promise<void> {
    for (const path of paths) await q.query('INSERT INTO pending_deletes (path) VALUES ($1) ON CONFLICT (path) DO NOTHING', [path]);
  }

  /** The oldest `limit` paths still to remove. */
  async list(limit: number): Promise<PendingDelete[]> {
    return this.db.query<PendingDelete>('SELECT path, attempts FROM pending_deletes ORDER BY created_at, path LIMIT $1', [limit]);
  }

  async done(path: string): Promise<void> {
    await this.db.query('DELETE FROM pending_deletes WHERE path = $1', [path]);
  }

  async failed(path: string, error: string): Promise<void> {
    await this.db.query('UPDATE pending_deletes SET attempts = attempts + 1, last_error = $2 WHERE path = $1', [path, error]);
  }
}
