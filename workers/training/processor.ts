/**
 * The BullMQ sandboxed processor: this module runs in a child process that BullMQ forks
 * (and reuses for later jobs), so the CPU-bound training loop never blocks the worker
 * host's event loop, which keeps renewing the job's lock. Messages go to the host
 * through job.updateProgress; the host turns each into a job event.
 */
import type { SandboxedJob } from 'bullmq';
import type { TrainingMessage, TrainingResult, TrainingTask } from '../../src/jobs/task.js';
import { runTraining } from './training-loop.js';

export default async function process(job: SandboxedJob<TrainingTask>, _token?: string, signal?: AbortSignal): Promise<TrainingResult> {
  return runTraining(job.data, (m: TrainingMessage) => job.updateProgress(m), signal);
}
