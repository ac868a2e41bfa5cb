// loaded with require: an ES import makes Node scan its CommonJS files for export names first (why: eslint.config.js)
import bullmq = require('bullmq');
import type { Redis } from 'ioredis';
import type { TrainingTask } from '../jobs/task.js';
import type { JobSpec } from '../schemas/job.js';

export const QUEUE_NAME = 'tfjs-adapt-training';

/** BullMQ's lowest priority; priorities are 1 (first) to this. */
const LOWEST_PRIORITY = 2 ** 21;

export interface EnqueueOptions {
  /**
   * The order among waiting jobs, 1 first, first come first served within one priority: the API
   * gives a job one more than its tenant's other unfinished jobs, so that a tenant's first job
   * starts before another tenant's hundredth. Default 1: a job handed back or reconciled has had
   * its turn already. Every job has one, because BullMQ serves jobs without a priority first.
   */
  priority?: number;
}

export interface QueueOptions {
  attempts: number;
  backoffMs: number;
}

/** The BullMQ queue: the transport that hands jobs to worker hosts. The store stays the source of truth. */
export class TrainingQueue {
  readonly queue: bullmq.Queue<TrainingTask>;

  constructor(connection: Redis, opts: QueueOptions) {
    this.queue = new bullmq.Queue<TrainingTask>(QUEUE_NAME, {
      connection,
      defaultJobOptions: {
        attempts: opts.attempts,
        backoff: { type: 'exponential', delay: opts.backoffMs },
        // BullMQ's copies are transport only (the store keeps the history): bound them
        removeOnComplete: { count: 1000, age: 24 * 3600 },
        removeOnFail: { count: 5000, age: 7 * 24 * 3600 },
      },
    });
  }

  /**
   * jobId = our job id, so adding the same job twice is a no-op. The spec's webhook (URL and
   * secret) is left out whatever the caller passed: every entry enters Redis here.
   */
  async enqueue(task: TrainingTask, { priority = 1 }: EnqueueOptions = {}): Promise<void> {
    const { webhook: _inStoreOnly, ...spec } = task.spec as TrainingTask['spec'] & Pick<JobSpec, 'webhook'>;
    await this.queue.add('train', { ...task, spec }, { jobId: task.jobId, priority: Math.min(Math.max(1, Math.floor(priority)), LOWEST_PRIORITY) });
  }

  /**
   * Queues a job again (resumed, handed back): its earlier queue entry has ended, and with
   * jobId = our id a new add would be a no-op while that entry exists, so it goes first.
   */
  async requeue(task: TrainingTask, opts: EnqueueOptions = {}): Promise<void> {
    const prior = await this.queue.getJob(task.jobId);
    if (prior) {
      const state = await prior.getState();
      if (state === 'active') throw new Error(`job ${task.jobId} is still active in the queue; it cannot be queued again yet`);
      await prior.remove();
    }
    await this.enqueue(task, opts);
  }

  /** Removes a job that is still waiting; a running one is locked and stays (it is cancelled through its worker). */
  async removeWaiting(jobId: string): Promise<boolean> {
    const job = await this.queue.getJob(jobId);
    if (!job) return false;
    const state = await job.getState();
    if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
    await job.remove().catch(() => undefined);
    return true;
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
