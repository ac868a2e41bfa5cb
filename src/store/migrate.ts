import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS_DIR } from '../paths.js';
import type { Db, Queryable } from './db.js';

// any constant; it keeps processes that start together from migrating at the same time
const MIGRATION_LOCK = 4_723_001;

/** Applies migrations/NNN_name.sql in order, each in its own transaction, recording each one. */
export async function migrate(db: Db, dir = MIGRATIONS_DIR): Promise<string[]> {
  const lock = async (tx: Queryable) => {
    if (db.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
  };
  // under the lock too: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent
  // one (the loser fails on pg_type's unique index), and API and worker processes start together
  await db.tx(async (tx) => {
    await lock(tx);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
  });
  const files = readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort();
  const applied: string[] = [];
  for (const name of files) {
    const done = await db.tx(async (tx) => {
      await lock(tx);
      const seen = await tx.query('SELECT 1 FROM schema_migrations WHERE name = $1', [name]);
      if (seen.length > 0) return false;
      await tx.exec(readFileSync(join(dir, name), 'utf8'));
      await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
      return true;
    });
    if (done) applied.push(name);
  }
  return applied;
}
