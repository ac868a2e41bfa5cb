// loaded with require: an ES import makes Node scan its CommonJS files for export names first (why: eslint.config.js)
import bullmq = require('bullmq');
import type { Redis } from 'ioredis';
import type { Job } from '../schemas/job.js';
import type { Sweep } from '../schemas/sweep.js';

export const WEBHOOK_QUEUE_NAME = 'tfjs-adapt-webhooks';

/** A job's delivery names its job (entries queued before sweeps carry no `kind`); a sweep's names its sweep. */
export type WebhookDelivery = { kind?: 'job'; jobId: string; status: Job['status'] } | { kind: 'sweep'; sweepId: string; status: Sweep['status'] };

/**
 * Deliveries of "job ended" callbacks, queued in Redis so they are retried with backoff
 * and survive restarts. The URL and secret stay in the job's spec in the store; only the
 * job id and its terminal status travel through the queue.
 */
export class WebhookQueue {
  readonly queue: bullmq.Queue<WebhookDelivery>;

  constructor(connection: Redis) {
    this.queue = new bullmq.Queue<WebhookDelivery>(WEBHOOK_QUEUE_NAME, {
      connection,
      defaultJobOptions: {
        attempts: 8,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 5000 },
      },
    });
  }

  /** Queues the callback for a job that has just ended, when its spec asks for one; once per job and status. */
  async notify(job: Job): Promise<void> {
    if (!job.spec.webhook || !['succeeded', 'failed', 'cancelled'].includes(job.status)) return;
    await this.queue.add('deliver', { jobId: job.id, status: job.status }, { jobId: `${job.id}-${job.status}` });
  }

  /** Queues the callback for a sweep that has just ended, when its spec asks for one; once per sweep and status. */
  async notifySweep(sweep: Sweep): Promise<void> {
    if (!sweep.spec.webhook || sweep.status === 'running') return;
    await this.queue.add('deliver', { kind: 'sweep', sweepId: sweep.id, status: sweep.status }, { jobId: `${sweep.id}-${sweep.status}` });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
