/**
 * Sweeps and their trials. Every state change of a sweep happens under its row's lock, in one
 * transaction with the job rows it creates: whoever advances a sweep (the API on create, the
 * worker host when a trial ends, reconciliation after a crash) sees the same truth, and two of
 * them at once cannot launch a trial twice or past maxParallel.
 */
import type { JobEstimate, JobSpec, JobStatus } from '../schemas/job.js';
import { TERMINAL_STATUSES } from '../schemas/job.js';
import type { Sweep, SweepSpec, SweepStatus, Trial } from '../schemas/sweep.js';
import { goalOf } from '../sweeps/objective.js';
import { bestTrial, selectionFor, trialObjective, validatorPicks } from '../sweeps/selection.js';
import type { Db, Queryable } from './db.js';
import type { EventStore, JobEvent, SweepEventType } from './events.js';
import { newId } from './ids.js';
import type { JobStore, Transition } from './jobs.js';
import { pageOf, type PageResult } from './paging.js';

export type SweepEvent = JobEvent<SweepEventType>;

interface SweepRow {
  id: string;
  tenant: string;
  status: SweepStatus;
  spec: SweepSpec;
  estimate: Sweep['estimate'];
  created_at: Date;
  finished_at: Date | null;
}

interface TrialRow {
  idx: number;
  parameters: Record<string, unknown>;
  spec: JobSpec;
  estimate: JobEstimate;
  job_id: string | null;
  stopped: { epoch: number; reason: string } | null;
  announced: boolean;
  job_status: JobStatus | null;
  result: { modelId: string; metrics: Record<string, unknown> } | null;
  metrics: Record<string, unknown> | null;
}

export interface NewSweep {
  id: string;
  tenant: string;
  spec: SweepSpec;
  estimate: Sweep['estimate'];
  trials: { parameters: Record<string, unknown>; spec: JobSpec; estimate: JobEstimate }[];
}

/** What advancing a sweep did: the jobs it created (to queue), the events it wrote, and the sweep if it ended. */
export interface Advance {
  /** whose sweep it is: its trials run as that tenant */
  tenant: string;
  /** the trials created, each with its queue priority: as the API gives a job, 1 + the tenant's unfinished jobs before it */
  launched: { transition: Transition; priority: number }[];
  events: SweepEvent[];
  ended: Sweep | null;
}

const isTerminal = (s: JobStatus | null) => s !== null && TERMINAL_STATUSES.includes(s);
const TRIALS_SQL = `SELECT t.*, j.status AS job_status, j.result, j.metrics FROM sweep_trials t LEFT JOIN jobs j ON j.id = t.job_id WHERE t.sweep_id = $1 ORDER BY t.idx`;

function toTrial(spec: SweepSpec, r: TrialRow): Trial {
  const lastEpoch = typeof r.metrics?.epoch === 'number' ? r.metrics.epoch : null;
  const latest = r.metrics?.[spec.objective.metric];
  return {
    index: r.idx,
    jobId: r.job_id,
    parameters: r.parameters,
    status: r.job_status ?? 'pending',
    objective: r.job_status === 'succeeded' ? trialObjective(spec.objective.metric, r.result, lastEpoch) : null,
    latest: lastEpoch !== null && typeof latest === 'number' ? { epoch: lastEpoch, value: latest } : null,
    stopped: r.stopped,
  };
}

function toSweep(r: SweepRow, rows: TrialRow[]): Sweep {
  const goal = goalOf(r.spec.objective);
  const trials = rows.map((t) => toTrial(r.spec, t));
  const results = new Map(rows.map((t) => [t.idx, t.result]));
  const metricsOf = (t: Trial) => results.get(t.index)?.metrics;
  const best = bestTrial(trials, goal, selectionFor(r.spec.objective.metric, metricsOf));
  const picks = validatorPicks(trials, {
    objective: (t, metric) => (t.status === 'succeeded' ? trialObjective(metric, results.get(t.index) ?? null, null) : null),
    metrics: metricsOf,
  }).flatMap(({ validator, trial, value }) => (trial.jobId === null ? [] : [{ validator, index: trial.index, jobId: trial.jobId, value }]));
  return {
    id: r.id,
    object: 'sweep',
    status: r.status,
    spec: r.spec,
    goal,
    trials,
    best: best && {
      index: best.trial.index,
      jobId: best.trial.jobId!,
      parameters: best.trial.parameters,
      objective: best.trial.objective,
      reason: best.reason,
    },
    validatorPicks: picks,
    estimate: r.estimate,
    createdAt: r.created_at.toISOString(),
    finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
  };
}

export class SweepStore {
  constructor(
    private readonly db: Db,
    private readonly jobs: JobStore,
    readonly events: EventStore<SweepEventType>,
  ) {}

  async create(s: NewSweep): Promise<SweepEvent[]> {
    return this.db.tx(async (q) => {
      await q.query(`INSERT INTO sweeps (id, tenant, status, spec, estimate) VALUES ($1, $2, 'running', $3::jsonb, $4::jsonb)`, [
        s.id,
        s.tenant,
        JSON.stringify(s.spec),
        JSON.stringify(s.estimate),
      ]);
      for (const [idx, t] of s.trials.entries()) {
        await q.query(`INSERT INTO sweep_trials (sweep_id, idx, parameters, spec, estimate) VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb)`, [
          s.id,
          idx,
          JSON.stringify(t.parameters),
          JSON.stringify(t.spec),
          JSON.stringify(t.estimate),
        ]);
      }
      return [await this.events.append(q, s.id, 'status', { status: 'running', trials: s.trials.length })];
    });
  }

  /** With `tenant`, another tenant's sweep is as good as missing. */
  async get(id: string, tenant?: string): Promise<Sweep | null> {
    return this.getIn(this.db, id, tenant);
  }

  private async getIn(q: Queryable, id: string, tenant?: string): Promise<Sweep | null> {
    const [row] = await q.query<SweepRow>('SELECT * FROM sweeps WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)', [id, tenant ?? null]);
    return row ? toSweep(row, await q.query<TrialRow>(TRIALS_SQL, [id])) : null;
  }

  async list(f: { limit: number; after?: string; status?: string; tenant: string }): Promise<PageResult<Sweep>> {
    const rows = await this.db.query<SweepRow>(
      `SELECT * FROM sweeps WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR status = $2) AND tenant = $3 ORDER BY id DESC LIMIT $4`,
      [f.after ?? null, f.status ?? null, f.tenant, f.limit + 1],
    );
    const sweeps = await Promise.all(rows.map(async (r) => toSweep(r, await this.db.query<TrialRow>(TRIALS_SQL, [r.id]))));
    return pageOf(sweeps, f.limit);
  }

  async tenantOf(id: string): Promise<string | null> {
    const [row] = await this.db.query<{ tenant: string }>('SELECT tenant FROM sweeps WHERE id = $1', [id]);
    return row?.tenant ?? null;
  }

  async runningIds(): Promise<string[]> {
    return (await this.db.query<{ id: string }>(`SELECT id FROM sweeps WHERE status = 'running' ORDER BY id`)).map((r) => r.id);
  }

  /**
   * Brings a running sweep forward: announces the trials that ended, launches pending trials
   * while fewer than maxParallel run and the tenant is under `maxActiveJobs` unfinished jobs,
   * and ends the sweep once every trial has ended. Idempotent: advancing twice changes nothing.
   */
  advance(id: string, { maxActiveJobs }: { maxActiveJobs: number }): Promise<Advance> {
    return this.db.tx(async (q) => {
      const [row] = await q.query<SweepRow>('SELECT * FROM sweeps WHERE id = $1 FOR UPDATE', [id]);
      const nothing: Advance = { tenant: row?.tenant ?? '', launched: [], events: [], ended: null };
      if (!row || row.status !== 'running') return nothing;
      const rows = await q.query<TrialRow>(TRIALS_SQL, [id]);
      const events: SweepEvent[] = [];
      for (const t of rows.filter((r) => isTerminal(r.job_status) && !r.announced)) {
        await q.query('UPDATE sweep_trials SET announced = true WHERE sweep_id = $1 AND idx = $2', [id, t.idx]);
        const trial = toTrial(row.spec, t);
        events.push(
          await this.events.append(q, id, 'trial', { index: t.idx, jobId: t.job_id, status: t.job_status, objective: trial.objective, stopped: t.stopped }),
        );
      }
      const running = rows.filter((r) => r.job_id !== null && !isTerminal(r.job_status)).length;
      const pending = rows.filter((r) => r.job_id === null);
      const active = await this.jobs.lockedActiveCount(q, row.tenant);
      const room = Math.max(0, Math.min(row.spec.maxParallel - running, maxActiveJobs - active));
      const launched: Advance['launched'] = [];
      for (const t of pending.slice(0, room)) {
        const jobId = newId('job');
        const transition = await this.jobs.createIn(q, { id: jobId, spec: t.spec, tenant: row.tenant, estimate: t.estimate, sweepId: id });
        launched.push({ transition, priority: active + launched.length + 1 });
        await q.query('UPDATE sweep_trials SET job_id = $3 WHERE sweep_id = $1 AND idx = $2', [id, t.idx, jobId]);
        events.push(await this.events.append(q, id, 'trial', { index: t.idx, jobId, status: 'queued', parameters: t.parameters }));
      }
      if (pending.length > 0 || running > 0) return { tenant: row.tenant, launched, events, ended: null };
      const done = toSweep(row, rows);
      const status: SweepStatus = done.best ? 'succeeded' : 'failed';
      await q.query(`UPDATE sweeps SET status = $2, finished_at = now() WHERE id = $1`, [id, status]);
      events.push(await this.events.append(q, id, 'status', { status, best: done.best }));
      return { tenant: row.tenant, launched, events, ended: await this.getIn(q, id) };
    });
  }

  /** Cancels a running sweep: no more trials launch; the caller cancels the ones still live (their ids). */
  cancel(
    id: string,
    tenant: string,
  ): Promise<{ outcome: 'missing' } | { outcome: 'terminal'; sweep: Sweep } | { outcome: 'cancelled'; sweep: Sweep; live: string[]; events: SweepEvent[] }> {
    return this.db.tx(async (q) => {
      const [row] = await q.query<SweepRow>('SELECT * FROM sweeps WHERE id = $1 AND tenant = $2 FOR UPDATE', [id, tenant]);
      if (!row) return { outcome: 'missing' as const };
      if (row.status !== 'running') return { outcome: 'terminal' as const, sweep: (await this.getIn(q, id))! };
      await q.query(`UPDATE sweeps SET status = 'cancelled', finished_at = now() WHERE id = $1`, [id]);
      const ev = await this.events.append(q, id, 'status', { status: 'cancelled', reason: 'cancelled by request' });
      const live = (await q.query<TrialRow>(TRIALS_SQL, [id])).filter((r) => r.job_id !== null && !isTerminal(r.job_status)).map((r) => r.job_id!);
      return { outcome: 'cancelled' as const, sweep: (await this.getIn(q, id))!, live, events: [ev] };
    });
  }

  /** Notes that the sweep stops its trial `jobId` early, once; null when it was noted already or the sweep is not running. */
  stopTrial(id: string, jobId: string, stopped: { epoch: number; reason: string }): Promise<SweepEvent | null> {
    return this.db.tx(async (q) => {
      const [row] = await q.query<{ idx: number }>(
        `UPDATE sweep_trials t SET stopped = $3::jsonb FROM sweeps s WHERE s.id = t.sweep_id AND s.status = 'running' AND t.sweep_id = $1 AND t.job_id = $2 AND t.stopped IS NULL RETURNING t.idx`,
        [id, jobId, JSON.stringify(stopped)],
      );
      if (!row) return null;
      return this.events.append(q, id, 'trial', { index: row.idx, jobId, stopped });
    });
  }

  /** Each launched trial's objective by epoch (index 0 is epoch 1), from its jobs' metrics events; a retried epoch counts once, as last reported. */
  async curves(id: string, metric: string): Promise<Map<string, number[]>> {
    const rows = await this.db.query<{ job_id: string; data: Record<string, unknown> }>(
      `SELECT e.job_id, e.data FROM job_events e JOIN sweep_trials t ON t.job_id = e.job_id WHERE t.sweep_id = $1 AND e.type = 'metrics' ORDER BY e.job_id, e.seq`,
      [id],
    );
    const byJob = new Map<string, number[]>();
    for (const { job_id, data } of rows) {
      const epoch = data.epoch;
      const value = data[metric];
      if (typeof epoch !== 'number' || typeof value !== 'number') continue;
      const curve = byJob.get(job_id) ?? [];
      curve.length = epoch - 1;
      curve.push(value);
      byJob.set(job_id, curve);
    }
    return byJob;
  }
}
