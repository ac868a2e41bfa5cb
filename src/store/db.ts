import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

/**
 * The one database interface of the service: PostgreSQL when DATABASE_URL is set,
 * else embedded PGlite. SQL is written once for both.
 */
export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** runs several statements separated by semicolons (migrations) */
  exec(sql: string): Promise<void>;
  tx<T>(fn: (q: Queryable & { exec(sql: string): Promise<void> }) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Reads of tables that may be answered from ReadCache: plain SELECTs, no row locks. */
const CACHEABLE = /^\s*SELECT\b(?![\s\S]*\bFOR\s+UPDATE\b)[\s\S]*\bFROM\b/i;

/**
 * Answers repeated reads without running them again until the next write. Sound only while this
 * process is the database's one client, which PGlite guarantees: every write passes through
 * this Db, so any statement but a cacheable read empties it. A job polled by many clients (or
 * by autocannon) then costs PGlite nothing between two progress updates; a PGlite query costs
 * about 0.5 ms of the thread that also serves the API. Rows are frozen: a caller that changed
 * a shared row would change every later answer.
 */
class ReadCache {
  private readonly entries = new Map<string, readonly unknown[]>();
  constructor(private readonly maxEntries: number) {}

  async read<T>(sql: string, params: unknown[] | undefined, run: () => Promise<T[]>): Promise<T[]> {
    const key = JSON.stringify([sql, params ?? []]);
    const hit = this.entries.get(key);
    if (hit) return hit as T[];
    const rows = deepFreeze(await run());
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, rows);
    return rows;
  }

  /**
   * Forgets everything once the write is over, whether it failed or not (a write that fails
   * half-way may still have changed something). PGlite runs statements one at a time in the
   * order they come, so a read that was in flight when the write began ran before it, and
   * what it kept is forgotten here too.
   */
  async write<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } finally {
      this.entries.clear();
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export async function openPglite(dir: string): Promise<Db> {
  mkdirSync(dir, { recursive: true });
  const db = await PGlite.create(dir);
  const cache = new ReadCache(512);
  return {
    kind: 'pglite',
    query<T>(sql: string, params?: unknown[]) {
      const run = async () => (await db.query<T>(sql, params)).rows;
      return CACHEABLE.test(sql) ? cache.read(sql, params, run) : cache.write(run);
    },
    exec: (sql: string) => cache.write(async () => void (await db.exec(sql))),
    // inside a transaction nothing is cached: its reads must see its own writes
    tx: (fn) =>
      cache.write(() =>
        db.transaction((t) =>
          fn({
            query: async <T>(sql: string, params?: unknown[]) => (await t.query<T>(sql, params)).rows,
            exec: async (sql: string) => void (await t.exec(sql)),
          }),
        ),
      ),
    close: () => db.close(),
  };
}

export async function openPostgres(url: string): Promise<Db> {
  // loaded only here: an embedded (PGlite) process never needs the driver (~45 ms of CPU to load)
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // an idle connection that the server drops (restart, failover) must not crash the process:
  // the pool replaces it, and the next query reports any lasting outage
  pool.on('error', () => undefined);
  // fail at start, not at the first request, when the server is unreachable
  await pool.query('SELECT 1');
  return {
    kind: 'postgres',
    async query<T>(sql: string, params?: unknown[]) {
      return (await pool.query(sql, params)).rows as T[];
    },
    async exec(sql: string) {
      await pool.query(sql);
    },
    async tx(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: async <T>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as T[],
          exec: async (sql: string) => void (await client.query(sql)),
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
