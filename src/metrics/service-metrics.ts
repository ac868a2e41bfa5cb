import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { AppDeps } from '../deps.js';
import { JOB_STATUSES } from '../schemas/job.js';
import { withTimeout } from '../timeout.js';
import { OptionalGauge } from './optional-gauge.js';
import { StoreHistogram } from './store-histogram.js';

const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'waiting-children', 'completed', 'failed'] as const;
/** states a job sits in before a worker takes it: what "queue depth" means */
const WAITING_STATES = new Set<string>(['waiting', 'prioritized', 'delayed']);
const QUEUE_TIMEOUT_MS = 2000;

/** Seconds from a job's start to its end: most jobs take minutes, the seed example tens of minutes on cpu. */
export const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];

export interface ServiceMetrics {
  registry: Registry;
  /** the metrics text, every figure read afresh */
  scrape(): Promise<string>;
  /** counts an error answer of the API; `code` is the problem type's slug */
  httpError(status: number, code: string): void;
}

/**
 * The service's Prometheus metrics. Job figures are read from the store at scrape time,
 * not counted in this process: the worker host that runs jobs may be another process, and
 * every API replica then reports the same totals (aggregate them with max, not sum).
 * One registry per app, so several apps in one process (tests) do not share counters.
 */
export function serviceMetrics(deps: Pick<AppDeps, 'store' | 'queue'>, onQueueError: (err: Error) => void): ServiceMetrics {
  const { store, queue } = deps;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'tfjs_adapt_jobs',
    help: 'Jobs in the store by status.',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const rows = await store.db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM jobs GROUP BY status');
      const byStatus = new Map(rows.map((r) => [r.status, r.n]));
      // every status is always present, so a rate() or an alert sees 0, not a missing series
      for (const s of JOB_STATUSES) this.set({ status: s }, byStatus.get(s) ?? 0);
    },
  });

  // prom-client collects all metrics of a scrape concurrently; the three queue gauges share one read per scrape
  let read: { counts: Promise<Record<string, number> | null> } | null = null;
  const queueCounts = () => {
    if (!read) {
      const counts = withTimeout(queue.queue.getJobCounts(...QUEUE_STATES), { ms: QUEUE_TIMEOUT_MS, what: 'reading the queue counts' }).catch((err: Error) => {
        // a scrape must still answer when Redis is away: that is when the other figures matter
        onQueueError(err);
        return null;
      });
      read = { counts };
    }
    return read.counts;
  };

  new Gauge({
    name: 'tfjs_adapt_queue_up',
    help: '1 when the job queue (Redis) answered this scrape, else 0.',
    registers: [registry],
    async collect() {
      this.set((await queueCounts()) ? 1 : 0);
    },
  });
  const depth = new OptionalGauge(
    'tfjs_adapt_queue_depth',
    'Jobs in the queue waiting for a worker (waiting, prioritized, delayed); absent when the queue did not answer.',
    async () => {
      const counts = await queueCounts();
      return counts ? [...WAITING_STATES].reduce((n, state) => n + (counts[state] ?? 0), 0) : null;
    },
  );
  registry.registerMetric(depth as unknown as Metric);
  new Gauge({
    name: 'tfjs_adapt_queue_jobs',
    help: "BullMQ jobs of the training queue by state (completed and failed are bounded by the queue's retention). Absent when the queue did not answer.",
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await queueCounts();
      if (counts) for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });

  new Gauge({
    name: 'tfjs_adapt_training_samples_per_second',
    help: "Training throughput of the running jobs (each job's latest epoch), summed by tfjs backend.",
    labelNames: ['backend'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await store.db.query<{ backend: string; sps: number }>(
        `SELECT coalesce(backend, 'unknown') AS backend, sum((metrics->>'samplesPerSecond')::float8)::float8 AS sps
           FROM jobs WHERE status = 'running' AND jsonb_typeof(metrics->'samplesPerSecond') = 'number' GROUP BY 1`,
      );
      for (const r of rows) this.set({ backend: r.backend }, r.sps);
    },
  });

  new Gauge({
    name: 'tfjs_adapt_job_errors',
    help: "Failed jobs by error code (the job's error.code).",
    labelNames: ['code'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await store.db.query<{ code: string; n: number }>(
        `SELECT coalesce(error->>'code', 'unknown') AS code, count(*)::int AS n FROM jobs WHERE status = 'failed' GROUP BY 1`,
      );
      for (const r of rows) this.set({ code: r.code }, r.n);
    },
  });

  const duration = new StoreHistogram(store.db, {
    name: 'tfjs_adapt_job_duration_seconds',
    help: "Time from a job's first start to its end, by type and final status.",
    buckets: DURATION_BUCKETS,
    labelNames: ['type', 'status'],
    observations: `SELECT type, status, extract(epoch FROM finished_at - started_at)::float8 AS v
                     FROM jobs WHERE finished_at IS NOT NULL AND started_at IS NOT NULL`,
  });
  registry.registerMetric(duration as unknown as Metric);

  const httpErrors = new Counter({
    name: 'tfjs_adapt_http_errors_total',
    help: 'Error answers of this API process, by HTTP status and problem code.',
    labelNames: ['status', 'code'],
    registers: [registry],
  });

  return {
    registry,
    scrape() {
      read = null;
      return registry.metrics();
    },
    httpError: (status, code) => httpErrors.inc({ status, code }),
  };
}
