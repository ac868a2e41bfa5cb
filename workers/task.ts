/**
 * The contract between the worker host and the sandboxed training child.
 * The host resolves every id into file locations before queueing, so the child
 * never touches the database: it reads files, trains, writes files, and reports.
 */
import type { JobSpec, Progress } from '../src/schemas/job.js';

/** A dataset in its compact on-disk form: `features.bin` and `labels.bin` in `dir`. */
export interface DatasetFiles {
  id: string;
  dir: string;
  numExamples: number;
  /** shape of one example, e.g. [784] or [28, 28, 1] */
  featureShape: number[];
  /** element type of features.bin; labels.bin is always little-endian int32 */
  featureDtype: 'uint8' | 'float32';
  numClasses: number;
  classes: string[];
  /** model input = stored value * scale + offset */
  preprocessing: { scale: number; offset: number };
}

export interface TrainingTask {
  jobId: string;
  /**
   * attempts made before this queue entry: a paused, handed-back or reconciled job is
   * queued anew, and its attempt numbers must keep rising (the store refuses older ones)
   */
  attemptBase?: number;
  spec: JobSpec;
  data: { train: DatasetFiles; validation?: DatasetFiles; test?: DatasetFiles };
  /** directory holding model.json and weights.bin of the base model (finetune) */
  baseModelDir?: string;
  baseModelId?: string;
  /** where the trained model goes; written atomically (temp dir then rename) */
  modelDir: string;
  modelId: string;
  /** where epoch checkpoints go: checkpointsDir/epoch-0001/{model.json,weights.bin,state.json} */
  checkpointsDir: string;
}

/** What the child reports while it runs, in order; each becomes one job event. */
export type TrainingMessage =
  | { type: 'started'; backend: string; numTensors: number }
  | { type: 'progress'; progress: Progress; metrics: { loss: number } }
  | { type: 'metrics'; epoch: number; metrics: Record<string, number> }
  | { type: 'checkpoint'; epoch: number; step: number; path: string; metrics: Record<string, number> }
  | { type: 'log'; level: 'info' | 'warn'; message: string };

export type TrainingResult =
  | { outcome: 'succeeded'; modelId: string; metrics: Record<string, number>; backend: string }
  | { outcome: 'cancelled'; metrics: Record<string, number>; stoppedAt?: { epoch: number; step: number } };

/**
 * A failure the child understands. `retryable: false` means the job's inputs are
 * to blame (bad data, bad model, bad spec) and running it again cannot help.
 */
export class TrainingError extends Error {
  readonly code: string;
  readonly param?: string;
  constructor(code: string, message: string, opts: { param?: string; retryable?: boolean } = {}) {
    super(message);
    this.code = code;
    if (opts.param !== undefined) this.param = opts.param;
    // BullMQ recognises a permanent failure by this name, also across the sandbox boundary
    // (it copies own properties of the error), so the name is set as an own property.
    Object.defineProperty(this, 'name', {
      value: opts.retryable ? 'TrainingError' : 'UnrecoverableError',
      enumerable: true,
    });
  }
}
