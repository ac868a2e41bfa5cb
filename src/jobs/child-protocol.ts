/**
 * The messages between the worker host and a training child over the child's IPC channel
 * (workers/host/training-child.ts forks workers/training/processor.ts). The host sends one
 * `run` per attempt and at most a `stop` for it; the child answers `ready` once it has loaded,
 * then its training messages, then exactly one `result` or `error`.
 */
import type { DEFER_REASON, TrainingMessage, TrainingResult, TrainingTask } from './task.js';

/**
 * Why the host asks a running attempt to stop. The child checkpoints first unless it is
 * `cancel` (see TrainingResult); `max_runtime` is the host's runtime limit; DEFER_REASON, the
 * tenant's running cap (workers/host/tenant-gate.ts).
 */
export type ChildStopReason = 'cancel' | 'pause' | 'shutdown' | 'max_runtime' | typeof DEFER_REASON;

export type HostToChild = { type: 'run'; task: TrainingTask } | { type: 'stop'; reason: ChildStopReason };

/** An error as it crossed the process boundary: own fields of the thrown value, `name` included. */
export interface ChildError {
  name: string;
  message: string;
  code?: string;
  param?: string;
  stack?: string;
}

export type ChildToHost =
  { type: 'ready' } | { type: 'message'; message: TrainingMessage } | { type: 'result'; result: TrainingResult } | { type: 'error'; error: ChildError };
