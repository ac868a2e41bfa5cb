/**
 * Checkpoints: one directory per position in training, written atomically (saveModel's temp
 * directory and rename), so a directory with a checkpoint's name is always complete. It holds
 * the model (model.json, weights.bin: a loadable LayersModel, batch-norm statistics included),
 * the optimizer's state (optimizer.bin), the method's own variables (method.bin, e.g. DANN's
 * domain classifier) and state.json: the position, the epoch's running sums and the rest a
 * resume needs to continue exactly where the run stood.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import tf = require('@tensorflow/tfjs');
import { MODEL_FILE, saveModel, WEIGHTS_FILE } from './models.js';
import type { NamedTensor } from './optimizers.js';
import type { Position } from '../../src/jobs/task.js';

export const STATE_FILE = 'state.json';
export const OPTIMIZER_FILE = 'optimizer.bin';
export const METHOD_FILE = 'method.bin';
/** Raised when state.json changes meaning; an older checkpoint is then not read. */
const FORMAT = 1;
const NAME = /^epoch-(\d+)-step-(\d+)$/;

/** `epoch-0003-step-00000189`: zero-padded, so a listing shows checkpoints in training order. */
export function checkpointName(at: Position): string {
  return `epoch-${String(at.epoch).padStart(4, '0')}-step-${String(at.step).padStart(8, '0')}`;
}

export interface TensorFile {
  file: string;
  weights: tf.io.WeightsManifestEntry[];
}

export interface EarlyStoppingState {
  /** the epoch with the best value so far (0: none yet) */
  bestEpoch: number;
  best: number;
  /** epochs since then */
  wait: number;
  bestMetrics: Record<string, number>;
}

/** The epoch in progress: sums over its steps so far (all zero at the end of an epoch). */
export interface EpochSums {
  loss: number;
  correct: number;
  seen: number;
  signals: Record<string, number>;
}

export interface CheckpointState extends Position {
  format: number;
  jobId: string;
  stepsPerEpoch: number;
  epochs: number;
  batchSize: number;
  seed: number;
  sums: EpochSums;
  /** metrics of the last complete epoch */
  metrics: Record<string, number>;
  earlyStopping?: EarlyStoppingState;
  optimizer: TensorFile & { name: string };
  method?: TensorFile & { name: string };
}

export interface CheckpointContent {
  state: Omit<CheckpointState, 'format' | 'optimizer' | 'method'>;
  optimizer: { name: string; tensors: NamedTensor[] };
  method: { name: string; tensors: NamedTensor[] };
}

export async function writeCheckpoint(dir: string, model: tf.LayersModel, content: CheckpointContent): Promise<void> {
  const optimizer = await tf.io.encodeWeights(content.optimizer.tensors);
  const files: Record<string, string | Uint8Array> = { [OPTIMIZER_FILE]: new Uint8Array(optimizer.data) };
  const state: CheckpointState = {
    format: FORMAT,
    ...content.state,
    optimizer: { name: content.optimizer.name, file: OPTIMIZER_FILE, weights: optimizer.specs },
  };
  if (content.method.tensors.length > 0) {
    const method = await tf.io.encodeWeights(content.method.tensors);
    files[METHOD_FILE] = new Uint8Array(method.data);
    state.method = { name: content.method.name, file: METHOD_FILE, weights: method.specs };
  }
  files[STATE_FILE] = JSON.stringify(state, null, 2);
  await saveModel(model, dir, files);
}

/**
 * The newest checkpoint in `checkpointsDir` that can be read, or undefined when there is none.
 * One that cannot be read is reported through `warn` and passed over for the one before it.
 */
export async function latestCheckpoint(
  checkpointsDir: string,
  warn: (message: string) => Promise<void>,
): Promise<{ dir: string; state: CheckpointState } | undefined> {
  let names: string[];
  try {
    names = await readdir(checkpointsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const newestFirst = names
    .map((name) => ({ name, step: Number(NAME.exec(name)?.[2]) }))
    .filter((c) => Number.isInteger(c.step))
    .sort((a, b) => b.step - a.step);
  for (const { name } of newestFirst) {
    const dir = path.join(checkpointsDir, name);
    try {
      const state = JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as CheckpointState;
      if (state.format !== FORMAT) throw new Error(`it has format ${state.format}; this version reads format ${FORMAT}`);
      return { dir, state };
    } catch (err) {
      await warn(`checkpoint ${name} could not be read (${(err as Error).message}); trying the one before it`);
    }
  }
  return undefined;
}

/** The tensors of one of a checkpoint's files, in the order they were saved; the caller disposes them. */
export async function readTensors(dir: string, file: TensorFile): Promise<NamedTensor[]> {
  const bytes = await readFile(path.join(dir, file.file));
  const map = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), file.weights);
  return file.weights.map((w) => ({ name: w.name, tensor: map[w.name] }));
}

/** The model weights of a checkpoint (or of any saved model) by name; the caller disposes them. */
export async function readModelWeights(dir: string): Promise<tf.NamedTensorMap> {
  const json = JSON.parse(await readFile(path.join(dir, MODEL_FILE), 'utf8')) as tf.io.ModelJSON;
  const bytes = await readFile(path.join(dir, WEIGHTS_FILE));
  return tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), tf.io.getWeightSpecs(json.weightsManifest));
}
