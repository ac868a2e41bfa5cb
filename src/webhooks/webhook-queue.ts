import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Job } from '../schemas/job.js';

export const WEBHOOK_QUEUE_NAME = 'tfjs-adapt-webhooks';

export interface WebhookDelivery {
  jobId: string;
  status: Job['status'];
}

/**
 * Deliveries of "job ended" callbacks, queued in Redis so they are retried with backoff
 * and survive restarts. The URL and secret stay in the job's spec in the store; only the
 * job id and its terminal status travel through the queue.
 */
export class WebhookQueue {
  readonly queue: Queue<WebhookDelivery>;

  constructor(connection: Redis) {
    this.queue = new Queue<WebhookDelivery>(WEBHOOK_QUEUE_NAME, {
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

  close(): Promise<void> {
    return this.queue.close();
  }
}
