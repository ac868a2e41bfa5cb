import type { Logger } from 'pino';
import type { Artifacts } from '../src/artifacts/artifacts.js';
import { resolveTask } from '../src/queue/training-task.js';
import type { TrainingQueue } from '../src/queue/training-queue.js';
import type { LiveEvents } from '../src/queue/live-events.js';
import type { Store } from '../src/store/store.js';

/**
 * The store is the source of truth: a job it has as queued or running that BullMQ no
 * longer knows (Redis lost its data, or the job was never queued) is queued again.
 */
export async function reconcile(deps: { store: Store; queue: TrainingQueue; artifacts: Artifacts; live: LiveEvents; log: Logger }): Promise<number> {
  const { store, queue, artifacts, live, log } = deps;
  let requeued = 0;
  for (const id of await store.jobs.unfinishedIds()) {
    if (await queue.queue.getJob(id)) continue;
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
