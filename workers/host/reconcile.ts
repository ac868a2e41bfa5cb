import type { Logger } from 'pino';
import type { Artifacts } from '../../src/artifacts/artifacts.js';
import { sweepPendingDeletes } from '../../src/artifacts/pending-deletes.js';
import { resolveTask } from '../../src/jobs/training-task.js';
import type { TrainingQueue } from '../../src/queue/training-queue.js';
import type { LiveEvents } from '../../src/queue/live-events.js';
import type { Store } from '../../src/store/store.js';
import type { SweepLauncher } from '../../src/sweeps/launcher.js';
import type { WorkerHost } from './worker-host.js';

export interface ReconcileDeps {
  store: Store;
  queue: TrainingQueue;
  artifacts: Artifacts;
  live: LiveEvents;
  log: Logger;
  host: Pick<WorkerHost, 'settle'>;
  /**
   * how long after BullMQ finished a job the store may still have it live: the host that
   * finished it records it within moments, unless it died in between
   */
  settleAfterMs: number;
  /** WEBHOOK_ALLOWED_HOSTS, as the API checked the job's webhook against when it accepted it */
  webhookAllowedHosts: readonly string[];
  /** advances every running sweep: trials that ended while no host could launch the next (see src/sweeps/launcher.ts) */
  sweeps: Pick<SweepLauncher, 'advanceAll'>;
}

/**
 * The store is the source of truth: a job it has as queued or running must be held by BullMQ
 * (waiting, delayed or active). BullMQ may have lost it (Redis lost its data, or the job was
 * never queued), or have finished it without the store hearing (its host died in between:
 * that end is recorded now), or hold only a finished entry from before (a job resumed while
 * Redis was away). Any such job is queued again. Then every running sweep is advanced, so one
 * whose trial ended while its host died launches its next trials (and ends) all the same, and
 * the files of records deleted while the object store was away are removed (pending-deletes.ts).
 */
export async function reconcile(deps: ReconcileDeps): Promise<number> {
  const { store, log } = deps;
  let requeued = 0;
  for (const id of await store.jobs.unfinishedIds()) {
    try {
      if (await reconcileJob(deps, id)) requeued++;
    } catch (err) {
      // one job that cannot be reconciled now must not hold up the others
      log.warn({ jobId: id, err: (err as Error).message }, 'could not reconcile this job; will try again');
    }
  }
  await deps.sweeps.advanceAll();
  await sweepPendingDeletes(deps);
  return requeued;
}

async function reconcileJob(deps: ReconcileDeps, id: string): Promise<boolean> {
  const { store, queue, artifacts, live, log, host, settleAfterMs, webhookAllowedHosts } = deps;
  // the host that finished an entry records it within moments; later than that, it never will
  const finishedLongAgo = (entry: { finishedOn?: number }) => entry.finishedOn !== undefined && Date.now() - entry.finishedOn > settleAfterMs;
  let entry = await queue.queue.getJob(id);
  if (entry && finishedLongAgo(entry)) {
    await host.settle(entry);
    entry = await queue.queue.getJob(id);
  }
  if (entry && !finishedLongAgo(entry)) return false;
  const job = await store.jobs.get(id);
  if (!job || (job.status !== 'queued' && job.status !== 'running')) return false;
  const resolved = await resolveTask(store, artifacts, { jobId: id, spec: job.spec, tenant: undefined, webhookAllowedHosts });
  if ('errors' in resolved) {
    const [first] = resolved.errors;
    await live.publish(
      id,
      (await store.jobs.failed(id, null, { code: 'unresolvable', message: `cannot run any more: ${first.pointer} ${first.detail}`, param: first.pointer }))
        ?.events ?? [],
    );
    return false;
  }
  await queue.requeue({ ...resolved.task, attemptBase: job.attempt });
  log.warn({ jobId: id, status: job.status }, 'the queue held no live entry for this unfinished job; queued it again');
  return true;
}
