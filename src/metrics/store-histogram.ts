import type { Db } from '../store/db.js';

interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export interface StoreHistogramOptions {
  name: string;
  help: string;
  /** upper bounds, ascending; +Inf is added */
  buckets: number[];
  labelNames: string[];
  /**
   * SQL yielding one row per observation with the label columns and a numeric column `v`;
   * it is wrapped as a subquery and bucketed in the database, so only counts leave it.
   */
  observations: string;
}

/**
 * A Prometheus histogram read from the store at scrape time. The API and the worker host can
 * be separate processes (and the API several replicas), so an in-process prom-client
 * Histogram would only see what its own process did; the store sees every finished job.
 * prom-client registers any object that answers `get()` like its own metrics.
 */
export class StoreHistogram {
  readonly name: string;
  readonly help: string;

  constructor(
    private readonly db: Db,
    private readonly opts: StoreHistogramOptions,
  ) {
    if (opts.buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= opts.buckets[i - 1]))) {
      throw new Error(`histogram ${opts.name}: buckets must be finite and ascending, got ${JSON.stringify(opts.buckets)}`);
    }
    this.name = opts.name;
    this.help = opts.help;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: HistogramValue[] }> {
    const { buckets, labelNames, observations } = this.opts;
    const labels = labelNames.map((l) => `"${l}"`).join(', ');
    // bucket bounds are numbers from code, never from a request, so inlining them is safe
    const counts = buckets.map((b, i) => `count(*) FILTER (WHERE v <= ${b})::int AS b${i}`).join(', ');
    const rows = await this.db.query<Record<string, string | number>>(
      `SELECT ${labels}, count(*)::int AS n, coalesce(sum(v), 0)::float8 AS s, ${counts}
         FROM (${observations}) o GROUP BY ${labels} ORDER BY ${labels}`,
    );
    const values: HistogramValue[] = [];
    for (const r of rows) {
      const base = Object.fromEntries(labelNames.map((l) => [l, String(r[l])]));
      buckets.forEach((b, i) => values.push({ metricName: `${this.name}_bucket`, labels: { ...base, le: b }, value: Number(r[`b${i}`]) }));
      values.push({ metricName: `${this.name}_bucket`, labels: { ...base, le: '+Inf' }, value: Number(r.n) });
      values.push({ metricName: `${this.name}_sum`, labels: base, value: Number(r.s) });
      values.push({ metricName: `${this.name}_count`, labels: base, value: Number(r.n) });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
