/**
 * What the training child holds of a dataset, shared by the child (workers/training/data.ts,
 * evaluate.ts) and the admission estimate (estimate.ts), so that the two agree. Features stay
 * in their stored type (uint8 pixels stay bytes) and become float32 a batch at a time; a dataset
 * whose features.bin is larger than RESIDENT_FEATURE_BYTES is not held at all but read from disk
 * batch by batch, so real image sets (150 KB an example at 224x224x3) cost their batches only.
 */

/** features.bin up to this size is read into memory once; a larger one is read per batch. */
export const RESIDENT_FEATURE_BYTES = 64 * 2 ** 20;

/** Rows of an evaluation batch, at most: enough to amortise per-op overhead on small examples. */
const EVAL_MAX_ROWS = 500;
/** Input values of an evaluation batch, at most: large examples are evaluated a few at a time. */
const EVAL_BATCH_VALUES = 2 ** 20;

export interface StoredFeatures {
  numExamples: number;
  featureShape: number[];
  featureDtype: 'uint8' | 'float32';
}

export const valuesPerExample = (d: Pick<StoredFeatures, 'featureShape'>) => d.featureShape.reduce((a, b) => a * b, 1);

/** The size of a dataset's features.bin. */
export const featureFileBytes = (d: StoredFeatures) => d.numExamples * valuesPerExample(d) * (d.featureDtype === 'float32' ? 4 : 1);

/** Whether the child keeps a dataset's features in memory (else it reads them per batch). */
export const keepsResident = (d: StoredFeatures) => featureFileBytes(d) <= RESIDENT_FEATURE_BYTES;

/** Bytes the child holds for a dataset outside its batches: the features when resident, the labels always. */
export const heldBytes = (d: StoredFeatures) => (keepsResident(d) ? featureFileBytes(d) : 0) + d.numExamples * 4;

/**
 * Values of an evaluation batch's largest layer output, at most: a wide network (a 512-filter
 * convolution at full resolution) is evaluated a few rows at a time, as training can be.
 */
const EVAL_BATCH_LAYER_VALUES = 2 ** 24;

/**
 * The rows of the batches a dataset is evaluated in (and adabn recomputes statistics in, and the
 * feature cache and predictions are computed in), for a model whose largest layer output is
 * `largestLayerOutput` values per example: the child counts them on its model, the estimate on its layers.
 */
export const evalBatchRows = (d: Pick<StoredFeatures, 'featureShape' | 'numExamples'>, model: { largestLayerOutput: number }) =>
  Math.max(
    1,
    Math.min(
      EVAL_MAX_ROWS,
      d.numExamples,
      Math.floor(EVAL_BATCH_VALUES / valuesPerExample(d)),
      Math.floor(EVAL_BATCH_LAYER_VALUES / Math.max(1, model.largestLayerOutput)),
    ),
  );
