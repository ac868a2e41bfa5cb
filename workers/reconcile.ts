import type { Logger } from 'pino';
import type { Artifacts } from '../src/artifacts/artifacts.js';
import { resolveTask } from '../src/queue/training-task.js';
import type { TrainingQueue } from '../src/queue/training-queue.js';
import type { LiveEvents } from '../src/queue/live-events.js';
import type { Store } from '../src/store/store.js';
import type { WorkerHost } from './worker.js';

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
}

/**
 * The store is the source of truth: a job it has as queued or running that BullMQ no
 * longer knows (Redis lost its data, or the job was never queued) is queued again, and one
 * that BullMQ finished without the store hearing of it is recorded as BullMQ ended it.
 */
export async function reconcile(deps: ReconcileDeps): Promise<number> {
  const { store, queue, artifacts, live, log, host, settleAfterMs } = deps;
  let requeued = 0;
  for (const id of await store.jobs.unfinishedIds()) {
    const entry = await queue.queue.getJob(id);
    if (entry) {
      if (entry.finishedOn !== undefined && Date.now() - entry.finishedOn > settleAfterMs) await host.settle(entry);
      continue;
    }
    const job = await store.jobs.get(id);
    if (!job) continue;
    const resolved = await resolveTask(store, artifacts, id, job.spec);
    if ('errors' in resolved) {
      const [first] = resolved.errors;
      await live.publish(id, (await store.jobs.failed(id, null, { code: 'unresolvable', message: `cannot run any more: ${first!.pointer} ${first!.detail}`, param: first!.pointer }))?.events ?? []);
      continue;
    }
    await queue.enqueue({ ...resolved.task, attemptBase: job.attempt });
    requeued++;
    log.warn({ jobId: id, status: job.status }, 'queue did not know this unfinished job; queued it again');
  }
  return requeued;
}
