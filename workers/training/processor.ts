/**
 * The BullMQ sandboxed processor: this module runs in a child process that BullMQ forks
 * (and reuses for later jobs), so the CPU-bound training loop never blocks the worker
 * host's event loop, which keeps renewing the job's lock. Messages go to the host
 * through job.updateProgress; the host turns each into a job event.
 */
import { DelayedError, type SandboxedJob } from 'bullmq';
import { DEFER_REASON, type TrainingMessage, type TrainingResult, type TrainingTask } from '../../src/jobs/task.js';
import { runTraining } from './training-loop.js';

export default async function process(job: SandboxedJob<TrainingTask>, _token?: string, signal?: AbortSignal): Promise<TrainingResult> {
  const result = await runTraining(job.data, (m: TrainingMessage) => job.updateProgress(m), signal);
  // the host moved the job back to the queue (its tenant runs its cap of jobs): end this entry without an outcome
  if (result.outcome === 'cancelled' && signal?.reason === DEFER_REASON) throw new DelayedError('deferred: the tenant runs its cap of jobs');
  return result;
}
