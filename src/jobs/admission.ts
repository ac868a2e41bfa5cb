/**
 * Admission by cost: a resolved task's estimate (estimate.ts) against the configured limits.
 * A job over a limit is refused with a pointer at the field to change, the estimate and the
 * limit; for the batch size and the epochs, with the largest value that would fit.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Artifacts } from '../artifacts/artifacts.js';
import type { FieldError } from '../field-error.js';
import { estimateJob, type EstimateInput, type JobEstimate, type ModelDescription } from './estimate.js';
import { PREDICTIONS_MAX_BYTES } from './predictions-file.js';
import type { TrainingTask } from './task.js';

export interface CostLimits {
  /** JOB_MAX_MEMORY_BYTES: the estimated peak memory of the training child */
  maxMemoryBytes: number;
  /** JOB_MAX_FLOPS: the estimated floating-point operations of the whole job */
  maxFlops: number;
}

/** A stored model.json is at most this large (uploads are bounded far below); a bigger one is not read into the API. */
const MODEL_JSON_MAX_BYTES = 64 * 1024 * 1024;

async function readModelJson(dir: string): Promise<ModelDescription | undefined> {
  try {
    const text = await readFile(join(dir, 'model.json'), 'utf8');
    if (text.length > MODEL_JSON_MAX_BYTES) return undefined;
    const json = JSON.parse(text) as ModelDescription;
    return json !== null && typeof json === 'object' ? json : undefined;
  } catch {
    // the training child reports an unreadable model with its own code and pointer
    return undefined;
  }
}

/** What estimateJob needs, read from the files a resolved task names. */
export async function estimateInput(task: TrainingTask): Promise<EstimateInput> {
  const dir = task.baseModelDir ?? task.baseModelDirs?.[0];
  const base = dir === undefined ? undefined : await readModelJson(dir);
  return {
    spec: task.spec,
    data: task.data,
    ...(base ? { base } : {}),
    ...(task.baseModelDirs ? { bases: task.baseModelDirs.length } : {}),
    ...(task.predictions
      ? {
          predictions: {
            format: task.predictions.format,
            classes: task.predictions.classes,
            ...(task.predictions.topK !== undefined ? { topK: task.predictions.topK } : {}),
          },
        }
      : {}),
  };
}

const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function formatBytes(n: number): string {
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toPrecision(3)} ${units[i]}`;
}
const formatFlops = (n: number) => `${n.toPrecision(3)} FLOPs`;

/** The field that sets the size of the model: what to change when its weights are too many. */
function modelPointer(input: EstimateInput): string {
  const a = input.spec.model.architecture;
  if (a) return a.kind === 'cnn' && (a.filters ?? [16, 32]).some((f) => f >= 128) ? '/model/architecture/filters' : '/model/architecture/hidden';
  return input.spec.model.bases ? '/model/bases' : '/model/base';
}

/** The role whose dataset the child holds the most bytes of, as a pointer into the spec. */
function largestDataPointer(input: EstimateInput): string {
  const bytes = (role: keyof EstimateInput['data']) => {
    const d = input.data[role];
    return d ? d.numExamples * d.featureShape.reduce((a, b) => a * b, 1) * (d.featureDtype === 'float32' ? 4 : 1) : 0;
  };
  const roles = Object.keys(input.data) as (keyof EstimateInput['data'])[];
  const role = roles.reduce((best, r) => (bytes(r) > bytes(best) ? r : best), roles[0]);
  return `/data/${role === 'train' && input.spec.type === 'domain_adaptation' ? 'source' : role}`;
}

/** The largest batch size below the spec's whose estimate stays within `limit` bytes, or 0. */
function largestBatchWithin(input: EstimateInput, limit: number): number {
  const hp = input.spec.hyperparameters!;
  const fits = (batchSize: number) => estimateJob({ ...input, spec: { ...input.spec, hyperparameters: { ...hp, batchSize } } }).memoryBytes <= limit;
  if (!fits(1)) return 0;
  let [lo, hi] = [1, hp.batchSize];
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The limits `estimate` exceeds, each as a problem at the field to change. */
export function overLimits(input: EstimateInput, estimate: JobEstimate, limits: CostLimits): FieldError[] {
  const errors: FieldError[] = [];
  const problem = (pointer: string, detail: string) => errors.push({ pointer, in: 'body', detail });
  const hp = input.spec.hyperparameters;
  if (estimate.memoryBytes > limits.maxMemoryBytes) {
    const e = estimate;
    const weights = e.parameterBytes + e.optimizerStateBytes;
    const what =
      `the training child's estimated peak memory is ${formatBytes(e.memoryBytes)} (weights ${formatBytes(e.parameterBytes)}, optimizer state ${formatBytes(e.optimizerStateBytes)}, ` +
      `one step's activations ${formatBytes(e.activationBytes)}${hp ? ` for batches of ${hp.batchSize}` : ''}, datasets ${formatBytes(e.datasetBytes)}), ` +
      `over the limit of ${formatBytes(limits.maxMemoryBytes)} (JOB_MAX_MEMORY_BYTES)`;
    if (hp && e.activationBytes >= weights && e.activationBytes >= e.datasetBytes) {
      const fit = largestBatchWithin(input, limits.maxMemoryBytes);
      if (fit > 0) problem('/hyperparameters/batchSize', `is ${hp.batchSize}: ${what}; expected a batchSize of at most ${fit}`);
      else problem(modelPointer(input), `makes a model too large for any batch size: ${what}; expected a smaller model`);
    } else if (e.datasetBytes > weights) {
      problem(largestDataPointer(input), `holds too much data: ${what}; expected smaller datasets`);
    } else {
      const optimizer = e.optimizerStateBytes > 0 ? ` (or an optimizer with less state than ${hp!.optimizer.name})` : '';
      problem(modelPointer(input), `makes a model too large: ${what}; expected a model with fewer weights${optimizer}`);
    }
  }
  if (estimate.flops > limits.maxFlops) {
    const what = `the job's estimated work is ${formatFlops(estimate.flops)} (${formatFlops(estimate.flopsPerEpoch)} per epoch), over the limit of ${formatFlops(limits.maxFlops)} (JOB_MAX_FLOPS)`;
    const final = estimate.flops - (hp ? hp.epochs * estimate.flopsPerEpoch : estimate.flops);
    const epochs = hp ? Math.floor((limits.maxFlops - final) / Math.max(1, estimate.flopsPerEpoch)) : 0;
    if (hp && epochs >= 1) problem('/hyperparameters/epochs', `is ${hp.epochs}: ${what}; expected at most ${epochs} epochs`);
    else if (hp) problem(modelPointer(input), `makes even one epoch too much work: ${what}; expected a smaller model or smaller datasets`);
    else if (input.spec.type === 'predict') problem('/data/input', `is too much to predict: ${what}; expected a smaller dataset or model`);
    else problem('/data/test', `is too much to evaluate: ${what}; expected a smaller test set or model`);
  }
  if (estimate.outputBytes !== undefined && estimate.outputBytes > PREDICTIONS_MAX_BYTES) {
    const topK = input.spec.output?.topK;
    problem(
      topK === undefined || topK > 1 ? '/output/topK' : '/data/input',
      `would make a predictions file of up to ${formatBytes(estimate.outputBytes)}, over the limit of ${formatBytes(PREDICTIONS_MAX_BYTES)}; ` +
        `expected ${topK === undefined || topK > 1 ? 'fewer classes a row (a smaller output.topK) or ' : ''}a smaller dataset`,
    );
  }
  return errors;
}

/**
 * The task's estimate and the limits it is over. The estimate reads the base's model.json from this process's copy
 * (the task's paths are built from ids under its root), fetched from the object store when it has none: a base the
 * store holds damaged or not at all, or a store that does not answer, throws (the API answers 409 artifact_damaged, 503).
 */
export async function admitTask(
  artifacts: Artifacts,
  task: TrainingTask,
  limits: CostLimits,
): Promise<{ estimate: JobEstimate } | { estimate: JobEstimate; errors: FieldError[] }> {
  const baseDir = task.baseModelDir ?? task.baseModelDirs?.[0];
  const lease = baseDir === undefined ? undefined : await artifacts.checkout(baseDir);
  const input = await estimateInput(task).finally(() => lease?.release());
  const estimate = estimateJob(input);
  const errors = overLimits(input, estimate, limits);
  return errors.length > 0 ? { estimate, errors } : { estimate };
}
