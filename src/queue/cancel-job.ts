import type { Logger } from 'pino';
import type { Outcome } from '../store/jobs.js';
import type { Store } from '../store/store.js';
import type { WebhookQueue } from '../webhooks/webhook-queue.js';
import type { LiveEvents } from './live-events.js';
import type { TrainingQueue } from './training-queue.js';

export interface CancelParts {
  store: Store;
  live: LiveEvents;
  queue: TrainingQueue;
  webhooks: WebhookQueue;
  log: Pick<Logger, 'warn'>;
}

/**
 * Cancels one job, for the API's cancel route and for a sweep cancelling its trials: a queued or
 * paused job ends at once (its webhook queued, its queue entry dropped); a running one is flagged
 * in the store and its worker host told, and that host records the end once it has stopped.
 */
export async function cancelJob(parts: CancelParts, id: string, tenant: string, reason = 'cancel'): Promise<Outcome<'cancelled' | 'requested' | 'terminal'>> {
  const { store, live, queue, webhooks, log } = parts;
  const r = await store.jobs.requestCancel(id, tenant);
  if (r.outcome === 'missing' || r.outcome === 'terminal') return r;
  await live.publish(id, r.transition.events);
  if (r.outcome === 'cancelled') {
    await webhooks.notify(r.transition.job).catch((err) => log.warn({ err, jobId: id }, `could not queue the webhook (${reason})`));
    await queue.removeWaiting(id).catch((err) => log.warn({ err, jobId: id }, `could not remove the cancelled job from the queue (${reason})`));
  } else {
    await live.requestStop(id, 'cancel');
  }
  return r;
}
