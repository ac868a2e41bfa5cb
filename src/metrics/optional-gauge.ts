/**
 * An unlabelled gauge whose value may be unknown at scrape time. prom-client's Gauge always
 * reports a value (0 after a reset); this one reports no sample at all when `read` gives null,
 * so a dashboard shows a gap instead of a false 0. Registered like StoreHistogram, through get().
 */
export class OptionalGauge {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Promise<number | null>,
  ) {}

  async get(): Promise<{ name: string; help: string; type: 'gauge'; aggregator: 'sum'; values: Array<{ labels: Record<string, never>; value: number }> }> {
    const value = await this.read();
    return { name: this.name, help: this.help, type: 'gauge', aggregator: 'sum', values: value === null ? [] : [{ labels: {}, value }] };
  }
}
