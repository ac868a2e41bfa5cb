/**
 * How often a running job reports progress. Every report becomes a stored job event (a
 * transaction in the store), a Redis message and an SSE message in the service, whose process
 * shares the machine with this one: at 4 reports a second it kept 11% of a core busy while a
 * seed-MLP job trained, and the job trained 8% slower than the same loop alone. So the first
 * report comes soon (a client sees the job move within a fraction of a second), and after it at
 * most one a second; the last step of an epoch (or of a pass) is always reported.
 */

/** the first report of an attempt: soon, so that a client sees the job move */
export const FIRST_PROGRESS_MS = 250;
/** every report after the first: a bound on the service's work per running job */
export const PROGRESS_INTERVAL_MS = 1000;

export class ProgressThrottle {
  private last: number;
  private reported = false;

  /** `now` is the clock (performance.now by default); the wait for the first report starts at construction. */
  constructor(private readonly now: () => number = () => performance.now()) {
    this.last = now();
  }

  /** Whether to report now; `final`: the last step of an epoch or pass, always reported. Counts a yes as a report. */
  due(final: boolean): boolean {
    const t = this.now();
    if (!final && t - this.last < (this.reported ? PROGRESS_INTERVAL_MS : FIRST_PROGRESS_MS)) return false;
    this.last = t;
    this.reported = true;
    return true;
  }
}
