/**
 * Fair share at the start of an attempt: a job whose tenant already runs
 * MAX_RUNNING_JOBS_PER_TENANT jobs (on any host) does not start; it goes back to the queue's
 * delayed set for a moment, keeping its priority, and the worker slot is free for the next job,
 * of another tenant. The training child that BullMQ gave it is told to stop at once (reason
 * DEFER_REASON), before its first step, and ends the entry with BullMQ's DelayedError, so that
 * BullMQ neither completes nor fails it. The order between tenants comes from the priorities the
 * API queues jobs with (src/queue/training-queue.ts).
 */
import type { Job as QueueJob } from 'bullmq';
import type { Logger } from 'pino';
import type { Store } from '../../src/store/store.js';
import type { TrainingTask } from '../../src/jobs/task.js';

export interface TenantGateOptions {
  store: Store;
  log: Logger;
  /** MAX_RUNNING_JOBS_PER_TENANT; 0: no cap */
  maxRunningPerTenant: number;
  /** how long a deferred job waits before it is offered again */
  deferMs: number;
}

export class TenantGate {
  constructor(private readonly opts: TenantGateOptions) {}

  /**
   * Whether `job` must wait because its tenant runs its cap already; if so it has been moved to
   * the delayed set, and the caller stops its child with DEFER_REASON (src/jobs/task.ts) and records nothing.
   */
  async defer(job: QueueJob<TrainingTask>): Promise<boolean> {
    const { maxRunningPerTenant: cap, store, deferMs, log } = this.opts;
    if (cap === 0 || job.token === undefined) return false;
    const found = await store.jobs.runningBesides(job.id!);
    if (found === null || found.running < cap) return false;
    // BullMQ counts this start in attemptsStarted; one less attemptBase keeps the job's attempt
    // numbers (attemptBase + attemptsStarted) those of the attempts that really ran
    await job.updateData({ ...job.data, attemptBase: (job.data.attemptBase ?? 0) - 1 });
    await job.moveToDelayed(Date.now() + deferMs, job.token);
    log.info({ jobId: job.id, tenant: found.tenant, running: found.running, cap }, 'tenant runs its cap of jobs; deferred');
    return true;
  }
}
