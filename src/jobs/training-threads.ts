/**
 * How many XNNPACK threads a training child trains with on wasm: TRAINING_THREADS, which the
 * worker host sets for each child (src/config.ts) and the child reads (workers/training/backend.ts).
 */
import os from 'node:os';

/** tfjs-backend-wasm 4.22 never makes a pool of more. */
export const MAX_TRAINING_THREADS = 8;

/** The default: each of `concurrency` children gets an equal share of the machine's cores. */
export function shareOfCores(concurrency: number): number {
  return Math.min(MAX_TRAINING_THREADS, Math.max(1, Math.floor(os.availableParallelism() / concurrency)));
}
