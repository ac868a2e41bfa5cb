import type { Job, JobError, JobEstimate, JobSpec, JobStatus, JobType, Progress } from '../schemas/job.js';
import type { Db, Queryable } from './db.js';
import type { EventStore, JobEvent } from './events.js';
import { pageOf, type PageResult } from './paging.js';

interface JobRow {
  id: string;
  type: JobType;
  status: JobStatus;
  spec: JobSpec;
  progress: Progress | null;
  metrics: Record<string, unknown> | null;
  result: Job['result'];
  error: JobError | null;
  attempt: number;
  estimate: JobEstimate | null;
  backend: string | null;
  stop_requested: 'cancel' | 'pause' | null;
  idempotency_key: string | null;
  request_hash: string | null;
  tenant: string;
  sweep_id: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export const toJob = (r: JobRow): Job => ({
  id: r.id,
  object: 'job',
  type: r.type,
  status: r.status,
  spec: r.spec,
  progress: r.progress,
  metrics: r.metrics,
  result: r.result,
  error: r.error,
  attempt: r.attempt,
  estimate: r.estimate ?? null,
  backend: r.backend,
  sweepId: r.sweep_id ?? null,
  cancelRequested: r.stop_requested === 'cancel',
  pauseRequested: r.stop_requested === 'pause',
  createdAt: r.created_at.toISOString(),
  startedAt: iso(r.started_at),
  finishedAt: iso(r.finished_at),
});

/** What a state change wrote: the job as it now is and the event that announces it. */
export interface Transition {
  job: Job;
  events: JobEvent[];
}

/** What a requested state change did: the job as it now is, with the events it added, unless there is no such job. */
export type Outcome<O extends string> = { outcome: 'missing' } | { outcome: O; transition: Transition };

export interface NewJob {
  id: string;
  spec: JobSpec;
  tenant?: string;
  idempotencyKey?: string;
  requestHash?: string;
  estimate?: JobEstimate;
  /** the sweep whose trial it is */
  sweepId?: string;
}

const LIVE = `status NOT IN ('succeeded', 'failed', 'cancelled')`;

/** First key of the per-tenant advisory lock that makes counting and adding unfinished jobs one step. */
const TENANT_JOBS_LOCK = 7_411_002;

/** A create or resume refused because the tenant already has `active` unfinished jobs. */
export interface TooMany {
  outcome: 'too_many';
  active: number;
}

/**
 * Job rows and their state changes. Every change made on behalf of a running attempt
 * names that attempt, and is ignored when the row has moved on to a newer one, so a
 * stale worker can never overwrite a newer attempt's results.
 */
export class JobStore {
  constructor(
    private readonly db: Db,
    private readonly events: EventStore,
  ) {}

  /**
   * Adds a queued job unless its tenant already has `maxActive` unfinished ones. The count and
   * the insert run under the tenant's lock, so concurrent requests cannot all pass one count.
   */
  create(j: NewJob, { maxActive }: { maxActive: number }): Promise<{ outcome: 'created'; transition: Transition; active: number } | TooMany> {
    return this.db.tx(async (q) => {
      const active = await this.lockedActiveCount(q, j.tenant ?? 'default');
      if (active >= maxActive) return { outcome: 'too_many' as const, active };
      return { outcome: 'created' as const, transition: await this.createIn(q, j), active };
    });
  }

  /**
   * Takes the tenant's lock for the rest of the caller's transaction and counts its unfinished
   * jobs: every path that adds one (create, resume, a sweep's trials) goes through here.
   */
  async lockedActiveCount(q: Queryable, tenant: string): Promise<number> {
    await q.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [TENANT_JOBS_LOCK, tenant]);
    const [row] = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE tenant = $1 AND ${LIVE}`, [tenant]);
    return row.n;
  }

  /** Inside the caller's transaction: a sweep launches its trials under its own row's lock. */
  async createIn(q: Queryable, j: NewJob): Promise<Transition> {
    await q.query(
      `INSERT INTO jobs (id, type, status, spec, idempotency_key, request_hash, tenant, estimate, sweep_id) VALUES ($1, $2, 'queued', $3::jsonb, $4, $5, $6, $7::jsonb, $8)`,
      [
        j.id,
        j.spec.type,
        JSON.stringify(j.spec),
        j.idempotencyKey ?? null,
        j.requestHash ?? null,
        j.tenant ?? 'default',
        j.estimate ? JSON.stringify(j.estimate) : null,
        j.sweepId ?? null,
      ],
    );
    const ev = await this.events.append(q, j.id, 'status', { status: 'queued' });
    return { job: (await this.getIn(q, j.id))!, events: [ev] };
  }

  /** Undoes a create whose job never reached the queue, so a retry of the request starts clean. */
  async discard(id: string): Promise<void> {
    await this.db.query('DELETE FROM jobs WHERE id = $1', [id]);
  }

  /** With `tenant`, another tenant's job is as good as missing. */
  async get(id: string, tenant?: string): Promise<Job | null> {
    if (tenant === undefined) return this.getIn(this.db, id);
    const [row] = await this.db.query<JobRow>('SELECT * FROM jobs WHERE id = $1 AND tenant = $2', [id, tenant]);
    return row ? toJob(row) : null;
  }

  /** Running jobs of the tenant that owns job `id`, that job aside: what MAX_RUNNING_JOBS_PER_TENANT bounds. */
  async runningBesides(id: string): Promise<{ tenant: string; running: number } | null> {
    const [row] = await this.db.query<{ tenant: string; running: number }>(
      `SELECT j.tenant, (SELECT count(*)::int FROM jobs o WHERE o.tenant = j.tenant AND o.status = 'running' AND o.id <> j.id) AS running
         FROM jobs j WHERE j.id = $1`,
      [id],
    );
    return row ?? null;
  }

  private async getIn(q: Queryable, id: string): Promise<Job | null> {
    const [row] = await q.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id]);
    return row ? toJob(row) : null;
  }

  async byIdempotencyKey(key: string, tenant = 'default'): Promise<{ job: Job; requestHash: string | null } | null> {
    const [row] = await this.db.query<JobRow>('SELECT * FROM jobs WHERE idempotency_key = $1 AND tenant = $2', [key, tenant]);
    return row ? { job: toJob(row), requestHash: row.request_hash } : null;
  }

  async list(f: { limit: number; after?: string; status?: string; type?: string; sweepId?: string; tenant?: string }): Promise<PageResult<Job>> {
    const rows = await this.db.query<JobRow>(
      `SELECT * FROM jobs WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR status = $2)
         AND ($3::text IS NULL OR type = $3) AND ($6::text IS NULL OR sweep_id = $6) AND tenant = $5 ORDER BY id DESC LIMIT $4`,
      [f.after ?? null, f.status ?? null, f.type ?? null, f.limit + 1, f.tenant ?? 'default', f.sweepId ?? null],
    );
    return pageOf(rows.map(toJob), f.limit);
  }

  /** ids of jobs that the store has as queued or running: what the queue must hold */
  async unfinishedIds(): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(`SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY id`);
    return rows.map((r) => r.id);
  }

  /**
   * Runs `fn` with the job row locked, but only if the job is still live (with `running`, still
   * running) and, when `attempt` is given, still on that attempt. Returns null when the change
   * no longer applies.
   */
  private async change(
    id: string,
    attempt: number | null,
    fn: (q: Queryable, row: JobRow) => Promise<JobEvent[]>,
    { running = false } = {},
  ): Promise<Transition | null> {
    return this.db.tx(async (q) => {
      const [row] = await q.query<JobRow>(`SELECT * FROM jobs WHERE id = $1 AND ${running ? `status = 'running'` : LIVE} FOR UPDATE`, [id]);
      if (!row || (attempt !== null && row.attempt !== attempt)) return null;
      const events = await fn(q, row);
      return { job: (await this.getIn(q, id))!, events };
    });
  }

  /** A worker picked the job up. Refused when the job was cancelled meanwhile or a newer attempt runs. */
  started(id: string, attempt: number): Promise<Transition | null> {
    return this.db.tx(async (q) => {
      const [row] = await q.query<JobRow>(`SELECT * FROM jobs WHERE id = $1 AND status IN ('queued', 'running') FOR UPDATE`, [id]);
      if (!row || row.attempt >= attempt || row.stop_requested) return null;
      await q.query(`UPDATE jobs SET status = 'running', attempt = $2, started_at = coalesce(started_at, now()), error = NULL WHERE id = $1`, [id, attempt]);
      const ev = await this.events.append(q, id, 'status', { status: 'running', attempt });
      return { job: (await this.getIn(q, id))!, events: [ev] };
    });
  }

  backend(id: string, attempt: number, backend: string): Promise<Transition | null> {
    return this.report(id, attempt, {
      set: { column: 'backend', value: backend },
      type: 'log',
      data: { level: 'info', message: `training on the ${backend} backend`, backend },
    });
  }

  progress(id: string, attempt: number, progress: Progress, loss: number | undefined): Promise<Transition | null> {
    return this.report(id, attempt, {
      set: { column: 'progress', value: JSON.stringify(progress) },
      type: 'progress',
      data: { ...progress, ...(loss !== undefined ? { loss } : {}) },
    });
  }

  epochMetrics(id: string, attempt: number, epoch: number, metrics: Record<string, number>): Promise<Transition | null> {
    return this.report(id, attempt, {
      set: { column: 'metrics', value: JSON.stringify({ epoch, ...metrics }) },
      type: 'metrics',
      data: { epoch, ...metrics },
    });
  }

  /** `record` writes rows that belong to the same change (checkpoint row, feature cache row) in its transaction. */
  event(
    id: string,
    attempt: number,
    type: JobEvent['type'],
    data: Record<string, unknown>,
    record?: (q: Queryable) => Promise<void>,
  ): Promise<Transition | null> {
    return this.report(id, attempt, { type, data, record });
  }

  /**
   * What a live attempt reports every epoch or so (progress, epoch metrics, checkpoints, logs), under
   * the same rule as `change` (the job live and still on `attempt`) but in one guarded UPDATE that
   * also takes the event's seq and returns the row: `change`'s lock, re-read and second UPDATE cost
   * about half of the service's CPU per epoch in PGlite (~10 of 22 ms, profiled).
   */
  private report(
    id: string,
    attempt: number,
    r: {
      set?: { column: 'backend' | 'progress' | 'metrics'; value: string };
      type: JobEvent['type'];
      data: Record<string, unknown>;
      record?: (q: Queryable) => Promise<void>;
    },
  ): Promise<Transition | null> {
    const set = r.set === undefined ? '' : `${r.set.column} = $3${r.set.column === 'backend' ? '' : '::jsonb'}, `;
    return this.db.tx(async (q) => {
      const [row] = await q.query<JobRow & { event_seq: number }>(
        `UPDATE jobs SET ${set}event_seq = event_seq + 1, updated_at = now() WHERE id = $1 AND ${LIVE} AND attempt = $2 RETURNING *`,
        r.set === undefined ? [id, attempt] : [id, attempt, r.set.value],
      );
      if (!row) return null;
      if (r.record) await r.record(q);
      const ev = await this.events.insert(q, id, row.event_seq, r.type, r.data);
      return { job: toJob(row), events: [ev] };
    });
  }

  succeeded(id: string, attempt: number, result: NonNullable<Job['result']>, record: (q: Queryable) => Promise<void>): Promise<Transition | null> {
    return this.change(id, attempt, async (q) => {
      await record(q);
      await q.query(`UPDATE jobs SET status = 'succeeded', result = $2::jsonb, finished_at = now() WHERE id = $1`, [id, JSON.stringify(result)]);
      return [await this.events.append(q, id, 'status', { status: 'succeeded', result })];
    });
  }

  /** Final failure; `attempt` null for failures found outside any attempt (e.g. while queueing). */
  failed(id: string, attempt: number | null, error: JobError): Promise<Transition | null> {
    return this.change(id, attempt, async (q) => {
      await q.query(`UPDATE jobs SET status = 'failed', error = $2::jsonb, finished_at = now() WHERE id = $1`, [id, JSON.stringify(error)]);
      return [await this.events.append(q, id, 'status', { status: 'failed', error })];
    });
  }

  /**
   * The attempt failed but the queue will try again. Like pausing and handing back, it ends a
   * running attempt, so it applies once: a second report of the same end (a host that records
   * it after reconciliation did) changes nothing.
   */
  retrying(id: string, attempt: number, error: JobError, delayMs: number | null): Promise<Transition | null> {
    return this.change(
      id,
      attempt,
      async (q) => {
        await q.query(`UPDATE jobs SET status = 'queued', error = $2::jsonb WHERE id = $1`, [id, JSON.stringify(error)]);
        return [await this.events.append(q, id, 'status', { status: 'queued', retry: { afterAttempt: attempt, delayMs }, error })];
      },
      { running: true },
    );
  }

  /** Cancelled for good: from the API for a queued job, from the worker once a running one stopped. */
  cancelled(id: string, attempt: number | null, reason: string): Promise<Transition | null> {
    return this.change(id, attempt, async (q) => {
      await q.query(`UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = $1`, [id]);
      return [await this.events.append(q, id, 'status', { status: 'cancelled', reason })];
    });
  }

  /** A running job stopped at a pause request, its checkpoint written. */
  paused(id: string, attempt: number, stoppedAt: { epoch: number; step: number } | null): Promise<Transition | null> {
    return this.change(
      id,
      attempt,
      async (q) => {
        await q.query(`UPDATE jobs SET status = 'paused', stop_requested = NULL WHERE id = $1`, [id]);
        return [await this.events.append(q, id, 'status', { status: 'paused', stoppedAt })];
      },
      { running: true },
    );
  }

  /** A worker shutting down checkpointed the job and gave it back to the queue. */
  handedBack(id: string, attempt: number, stoppedAt: { epoch: number; step: number } | null): Promise<Transition | null> {
    return this.change(
      id,
      attempt,
      async (q) => {
        await q.query(`UPDATE jobs SET status = 'queued' WHERE id = $1`, [id]);
        return [await this.events.append(q, id, 'status', { status: 'queued', handedBack: { stoppedAt, afterAttempt: attempt } })];
      },
      { running: true },
    );
  }

  /**
   * The API's half of pausing: a queued job is paused at once (the caller takes it off
   * the queue); a running one is flagged and its worker told.
   */
  requestPause(id: string, tenant = 'default'): Promise<Outcome<'paused' | 'requested' | 'refused'>> {
    return this.db.tx(async (q) => {
      const [row] = await q.query<JobRow>('SELECT * FROM jobs WHERE id = $1 AND tenant = $2 FOR UPDATE', [id, tenant]);
      if (!row) return { outcome: 'missing' as const };
      if (row.status === 'queued') {
        await q.query(`UPDATE jobs SET status = 'paused' WHERE id = $1`, [id]);
        const ev = await this.events.append(q, id, 'status', { status: 'paused', stoppedAt: null });
        return { outcome: 'paused' as const, transition: { job: (await this.getIn(q, id))!, events: [ev] } };
      }
      if (row.status !== 'running' || row.stop_requested === 'cancel') return { outcome: 'refused' as const, transition: { job: toJob(row), events: [] } };
      if (row.stop_requested === 'pause') return { outcome: 'requested' as const, transition: { job: toJob(row), events: [] } };
      await q.query(`UPDATE jobs SET stop_requested = 'pause' WHERE id = $1`, [id]);
      const ev = await this.events.append(q, id, 'log', { level: 'info', message: 'pause requested; the job checkpoints and stops within one batch' });
      return { outcome: 'requested' as const, transition: { job: (await this.getIn(q, id))!, events: [ev] } };
    });
  }

  /**
   * A paused job goes back to the queue with its new estimate; it continues from its last
   * checkpoint. Paused jobs count toward `maxActive` already, so `active` excludes this one.
   */
  resume(
    id: string,
    { tenant = 'default', estimate, maxActive }: { tenant?: string; estimate?: JobEstimate; maxActive: number },
  ): Promise<Outcome<'refused'> | { outcome: 'resumed'; transition: Transition; active: number } | TooMany> {
    return this.db.tx(async (q) => {
      const others = (await this.lockedActiveCount(q, tenant)) - 1;
      const [row] = await q.query<JobRow>('SELECT * FROM jobs WHERE id = $1 AND tenant = $2 FOR UPDATE', [id, tenant]);
      if (!row) return { outcome: 'missing' as const };
      if (row.status !== 'paused') return { outcome: 'refused' as const, transition: { job: toJob(row), events: [] } };
      if (others >= maxActive) return { outcome: 'too_many' as const, active: others };
      await q.query(`UPDATE jobs SET status = 'queued', stop_requested = NULL, estimate = coalesce($2::jsonb, estimate) WHERE id = $1`, [
        id,
        estimate ? JSON.stringify(estimate) : null,
      ]);
      const ev = await this.events.append(q, id, 'status', { status: 'queued', resumed: true });
      return { outcome: 'resumed' as const, transition: { job: (await this.getIn(q, id))!, events: [ev] }, active: others };
    });
  }

  /**
   * The API's half of cancelling: a queued job is cancelled at once; a running one is
   * flagged and its worker told, and the worker records `cancelled` when it has stopped.
   */
  requestCancel(id: string, tenant = 'default'): Promise<Outcome<'cancelled' | 'requested' | 'terminal'>> {
    return this.db.tx(async (q) => {
      const [row] = await q.query<JobRow>('SELECT * FROM jobs WHERE id = $1 AND tenant = $2 FOR UPDATE', [id, tenant]);
      if (!row) return { outcome: 'missing' as const };
      if (['succeeded', 'failed', 'cancelled'].includes(row.status)) return { outcome: 'terminal' as const, transition: { job: toJob(row), events: [] } };
      if (row.status === 'queued' || row.status === 'paused') {
        await q.query(`UPDATE jobs SET status = 'cancelled', stop_requested = 'cancel', finished_at = now() WHERE id = $1`, [id]);
        const ev = await this.events.append(q, id, 'status', { status: 'cancelled', reason: 'cancelled by request' });
        return { outcome: 'cancelled' as const, transition: { job: (await this.getIn(q, id))!, events: [ev] } };
      }
      if (row.stop_requested === 'cancel') return { outcome: 'requested' as const, transition: { job: toJob(row), events: [] } };
      await q.query(`UPDATE jobs SET stop_requested = 'cancel' WHERE id = $1`, [id]);
      const ev = await this.events.append(q, id, 'log', { level: 'info', message: 'cancel requested; the job stops within one batch' });
      return { outcome: 'requested' as const, transition: { job: (await this.getIn(q, id))!, events: [ev] } };
    });
  }
}
