/**
 * The bare training loop, kept warm like BullMQ's reused training child: reads one TrainingTask
 * as JSON per stdin line, runs it with runTraining and a report that does nothing, and answers
 * one JSON line with the wall time of that call. bench/service-rows.ts drives it.
 */
import { createInterface } from 'node:readline';
import { selectBackend } from '../workers/training/backend.js';
import type { TrainingTask } from '../src/jobs/task.js';
import { runTraining } from '../workers/training/training-loop.js';

export interface BareResult {
  seconds: number;
  outcome: string;
  backend: string;
  /** the loop's own figure for its last epoch */
  samplesPerSecond: number | undefined;
}

process.env.TFJS_BACKEND ||= 'wasm';
const backend = await selectBackend();
process.stdout.write(JSON.stringify({ ready: backend }) + '\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  const task = JSON.parse(line) as TrainingTask;
  const started = performance.now();
  const result = await runTraining(task, () => {});
  const answer: BareResult = {
    seconds: (performance.now() - started) / 1000,
    outcome: result.outcome,
    backend,
    samplesPerSecond: result.metrics.samplesPerSecond,
  };
  process.stdout.write(JSON.stringify(answer) + '\n');
}
