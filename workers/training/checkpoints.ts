/**
 * Checkpoints: one directory per position in training, written atomically (saveModel's temp
 * directory and rename), so a directory with a checkpoint's name is complete unless an object
 * store or a disk damaged it afterwards (reading checks, see UnreadableCheckpoint). It holds
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
import { TrainingError, type Position } from '../../src/jobs/task.js';

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
 * A checkpoint file that is missing or damaged (an object store kept part of it, a disk filled
 * up). Not retryable: another attempt would read the same bytes; resume passes its checkpoint over.
 */
export class UnreadableCheckpoint extends TrainingError {
  constructor(dir: string, file: string, what: string) {
    super('checkpoint_unreadable', `checkpoint ${path.basename(dir)} cannot be read: ${file} ${what}`);
  }
}

/** A checkpoint read whole; the caller disposes its tensors. */
export interface Checkpoint {
  dir: string;
  state: CheckpointState;
  weights: tf.NamedTensorMap;
  optimizer: NamedTensor[];
  method: NamedTensor[];
}

/**
 * The newest checkpoint in `checkpointsDir` whose files can all be read, or undefined when there
 * is none. One that cannot be read is reported through `warn` and passed over for the one before it.
 */
export async function latestCheckpoint(checkpointsDir: string, warn: (message: string) => Promise<void>): Promise<Checkpoint | undefined> {
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
  for (const [i, { name }] of newestFirst.entries()) {
    try {
      return await readCheckpoint(path.join(checkpointsDir, name));
    } catch (err) {
      if (!(err instanceof UnreadableCheckpoint)) throw err;
      await warn(
        `${err.message}. Passed over: ${i + 1 < newestFirst.length ? 'trying the checkpoint before it' : 'there is none before it, so training starts from the beginning'}`,
      );
    }
  }
  return undefined;
}

async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const state = await readJson<CheckpointState>(dir, STATE_FILE);
  if (state.format !== FORMAT) throw new UnreadableCheckpoint(dir, STATE_FILE, `has format ${state.format}; this version reads format ${FORMAT}`);
  const weights = await readModelWeights(dir);
  const read: tf.Tensor[] = Object.values(weights);
  try {
    const optimizer = await readTensors(dir, state.optimizer);
    read.push(...optimizer.map((t) => t.tensor));
    const method = state.method ? await readTensors(dir, state.method) : [];
    return { dir, state, weights, optimizer, method };
  } catch (err) {
    tf.dispose(read);
    throw err;
  }
}

/** The tensors of one of a checkpoint's files, in the order they were saved; the caller disposes them. */
async function readTensors(dir: string, file: TensorFile): Promise<NamedTensor[]> {
  const map = await decodeFile(dir, file.file, file.weights, STATE_FILE);
  return file.weights.map((w) => ({ name: w.name, tensor: map[w.name] }));
}

/** The model weights of a checkpoint by name; the caller disposes them. */
export async function readModelWeights(dir: string): Promise<tf.NamedTensorMap> {
  const json = await readJson<tf.io.ModelJSON>(dir, MODEL_FILE);
  return decodeFile(dir, WEIGHTS_FILE, tf.io.getWeightSpecs(json.weightsManifest), MODEL_FILE);
}

/** The tensors `listedIn` lists, from `file`; its size is checked first, as tfjs's error for a short file names no file. */
async function decodeFile(dir: string, file: string, specs: tf.io.WeightsManifestEntry[], listedIn: string): Promise<tf.NamedTensorMap> {
  const bytes = await readCheckpointFile(dir, file);
  // a checkpoint's tensors are never quantized or strings (tf.io.encodeWeights of our variables)
  const expected = specs.reduce((n, s) => n + tf.util.sizeFromShape(s.shape) * tf.util.bytesPerElement(s.dtype), 0);
  if (bytes.byteLength !== expected)
    throw new UnreadableCheckpoint(dir, file, `has ${bytes.byteLength} bytes; expected ${expected}, the tensors ${listedIn} lists`);
  return tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), specs);
}

async function readCheckpointFile(dir: string, file: string): Promise<Buffer<ArrayBuffer>> {
  try {
    return await readFile(path.join(dir, file));
  } catch (err) {
    // other errors (EIO, EMFILE) are the machine's, not the checkpoint's, and stay retryable
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UnreadableCheckpoint(dir, file, 'is missing');
    throw err;
  }
}

async function readJson<T>(dir: string, file: string): Promise<T> {
  const text = (await readCheckpointFile(dir, file)).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new UnreadableCheckpoint(dir, file, `is not valid JSON (${(err as Error).message}); expected a complete JSON document`);
  }
}
