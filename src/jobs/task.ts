/**
 * The contract between the worker host and the training child.
 * The host resolves every id into file locations before queueing, so the child
 * never touches the database: it reads files, trains, writes files, and reports.
 */
import type { JobSpec, Progress } from '../schemas/job.js';
import type { FeatureCacheReport } from './feature-cache.js';
import type { PredictionFormat } from './predictions-file.js';
import type { Preprocessing } from './preprocessing.js';

/**
 * The spec as a task carries it: without `webhook`, whose URL and secret the webhook deliverer
 * reads from the store, so that no secret sits in Redis (queue entries, their AOF, the queue board).
 */
export type TaskSpec = Omit<JobSpec, 'webhook'>;

/** A dataset in its compact on-disk form: `features.bin` and `labels.bin` in `dir`. */
export interface DatasetFiles {
  id: string;
  dir: string;
  numExamples: number;
  /**
   * shape of one example as the model is fed it, e.g. [784] or [28, 28, 1]: the stored shape, or
   * a base model's when the stored images are its (input-shape.ts feedShape)
   */
  featureShape: number[];
  /** [h, w, c] when the examples are images (what augmentation reads them as) */
  imageShape?: number[];
  /** element type of features.bin; labels.bin is always little-endian int32 */
  featureDtype: 'uint8' | 'float32';
  numClasses: number;
  classes: string[];
  /** how stored values become model inputs: the dataset's own, or the base model's convention */
  preprocessing: Preprocessing;
}

export interface TrainingTask {
  jobId: string;
  /**
   * attempts made before this queue entry: a paused, handed-back or reconciled job is
   * queued anew, and its attempt numbers must keep rising (the store refuses older ones)
   */
  attemptBase?: number;
  spec: TaskSpec;
  /** the spec's datasets by role; see TrainingData */
  data: TrainingData;
  /** directory holding model.json and weights.bin of `model.base` (finetune, domain_adaptation, evaluate) */
  baseModelDir?: string;
  baseModelId?: string;
  /** the same for each of `model.bases` (domain_adaptation with multi_source), in the spec's order */
  baseModelDirs?: string[];
  baseModelIds?: string[];
  /** where the trained model goes; written atomically (temp dir then rename). An evaluate job writes nothing. */
  modelDir: string;
  modelId: string;
  /**
   * where checkpoints go, one directory per checkpoint, named by position so that they sort
   * in training order: checkpointsDir/epoch-0003-step-00000189/{model.json, weights.bin,
   * state.json, optimizer.bin[, method.bin]}. A task that finds checkpoints here resumes
   * from the newest.
   */
  checkpointsDir: string;
  /**
   * the root of the feature caches (src/artifacts/feature-cache.ts); the child reads and
   * writes cached outputs of frozen layers there, and says so with a `featureCache` message
   */
  featuresRoot?: string;
  /** predict jobs: the file of predictions to write (predictions-file.ts) */
  predictions?: PredictionsTask;
}

/** What a predict job writes: `file` in `dir`, written atomically (a temp dir then a rename), at most `maxBytes`. */
export interface PredictionsTask {
  dir: string;
  format: PredictionFormat;
  /** classes a row lists: spec.output.topK, or every class */
  topK?: number;
  /** the model's class names, as its record has them (the predict route names classes alike); null: indices */
  classes: string[] | null;
  maxBytes: number;
}

/**
 * `train` is the labelled set the model is trained on: `data.train` of train and finetune
 * jobs, `data.source` of domain_adaptation jobs; an evaluate job has none. The other roles
 * keep the spec's names.
 */
export interface TrainingData {
  train?: DatasetFiles;
  validation?: DatasetFiles;
  test?: DatasetFiles;
  target?: DatasetFiles;
  targetTest?: DatasetFiles;
  sourceTest?: DatasetFiles;
  /** predict jobs: data.input, fed as the predict route feeds examples (the model's preprocessing) */
  input?: DatasetFiles;
}

/**
 * Where a job stands: `step` counts steps since the start of training (over all epochs) and
 * `epoch` is the epoch that step belongs to (from 1), so the end of epoch 3 of 63-step epochs
 * is { epoch: 3, step: 189 }, and { epoch: 0, step: 0 } is before the first step.
 */
export interface Position {
  epoch: number;
  step: number;
}

/**
 * The breakdown of a test set's predictions that comes with a job's final metrics: per class
 * (in `classes` order) the share predicted right, null for a class without examples, and the
 * confusion matrix in counts, rows the true class and columns the predicted one.
 */
export interface TestReport {
  classes: string[];
  perClassAccuracy: (number | null)[];
  confusionMatrix: number[][];
}

/**
 * The reason the host aborts a child's attempt with when the job must wait for its tenant's
 * running cap (workers/host/tenant-gate.ts): the child ends the entry with BullMQ's DelayedError.
 */
export const DEFER_REASON = 'defer';

/** What the child reports while it runs, in order; each becomes one job event. */
export type TrainingMessage =
  | { type: 'started'; backend: string; numTensors: number }
  /** `metrics.loss`: the epoch's running loss, when something is trained (a predict job reports none) */
  | { type: 'progress'; progress: Progress; metrics?: { loss: number } }
  | { type: 'metrics'; epoch: number; metrics: Record<string, number> }
  /** `epoch` and `step` as in Position */
  | { type: 'checkpoint'; epoch: number; step: number; path: string; metrics: Record<string, number> }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  /** finetune jobs, before the first step; `path` is the cache directory when it was built (its bytes count for the tenant) */
  | { type: 'featureCache'; report: FeatureCacheReport; path?: string };

/**
 * `succeeded`: `report` is that of the test set (data.test; data.targetTest of a
 * domain_adaptation job) when there is one. For an evaluate job, `modelId` is the evaluated
 * model's and nothing was saved; for a predict job too, and `predictions` says what its file holds.
 * `cancelled`: the signal aborted; `stoppedAt` is where. Unless the abort's reason was 'cancel',
 * a checkpoint of that position was written first, so the job can resume from there.
 */
export type TrainingResult =
  | {
      outcome: 'succeeded';
      modelId: string;
      metrics: Record<string, number>;
      report?: TestReport;
      featureCache?: FeatureCacheReport;
      predictions?: { format: PredictionFormat; rows: number };
      backend: string;
    }
  | { outcome: 'cancelled'; metrics: Record<string, number>; stoppedAt: Position };

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
    // BullMQ recognises a permanent failure by this name; set as an own property, it also
    // crosses the process boundary with the error's other fields (workers/training/processor.ts).
    Object.defineProperty(this, 'name', {
      value: opts.retryable ? 'TrainingError' : 'UnrecoverableError',
      enumerable: true,
    });
  }
}
