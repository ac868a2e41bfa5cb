/**
 * Datasets in memory and the batches cut from them. A dataset is two flat files that map
 * straight onto typed arrays, so loading is one read per file and no parsing.
 */
import { open } from 'node:fs/promises';
import { endianness } from 'node:os';
import path from 'node:path';
import { mulberry32 } from '../../src/artifacts/ingest/random.js';
import { FEATURES_FILE, LABELS_FILE } from '../../src/artifacts/dataset-files.js';
import { TrainingError, type DatasetFiles } from '../../src/jobs/task.js';

export { FEATURES_FILE, LABELS_FILE, writeDatasetFiles } from '../../src/artifacts/dataset-files.js';

export interface Dataset {
  files: DatasetFiles;
  features: Uint8Array | Float32Array;
  labels: Int32Array;
  /** elements in one example: the product of featureShape */
  featureSize: number;
}

/**
 * Loads and validates a dataset. `param` is the JSON pointer of the spec field that named it
 * (e.g. `/data/train`), so a corrupt file is blamed on the right part of the job.
 */
export async function loadDataset(files: DatasetFiles, param: string): Promise<Dataset> {
  // Typed-array views use host byte order while the files are little-endian by contract.
  if (endianness() !== 'LE') throw new Error('datasets can only be read on a little-endian host');
  const corrupt = (message: string) => new TrainingError('dataset_corrupt', `dataset ${files.id}: ${message}`, { param });
  const { numExamples, featureShape, numClasses } = files;
  if (!Number.isInteger(numExamples) || numExamples < 1) throw corrupt(`numExamples is ${numExamples}; expected an integer >= 1`);
  if (featureShape.length === 0 || !featureShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw corrupt(`featureShape is [${featureShape.join(', ')}]; expected one or more integers >= 1`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 2) throw corrupt(`numClasses is ${numClasses}; expected an integer >= 2`);
  if (files.featureDtype !== 'uint8' && files.featureDtype !== 'float32') {
    throw corrupt(`featureDtype is '${String(files.featureDtype)}'; expected 'uint8' or 'float32'`);
  }
  const featureSize = featureShape.reduce((a, b) => a * b, 1);
  const bytesPerFeature = files.featureDtype === 'float32' ? 4 : 1;

  const featureBytes = await readExactly(
    path.join(files.dir, FEATURES_FILE),
    numExamples * featureSize * bytesPerFeature,
    `numExamples × prod(featureShape) × ${bytesPerFeature} = ${numExamples} × ${featureSize} × ${bytesPerFeature}`,
    corrupt,
  );
  const labelBytes = await readExactly(path.join(files.dir, LABELS_FILE), numExamples * 4, `numExamples × 4 = ${numExamples} × 4`, corrupt);

  const labels = new Int32Array(labelBytes);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label < 0 || label >= numClasses) {
      throw corrupt(`${LABELS_FILE} in ${files.dir}: example ${i} has label ${label}; expected an integer in [0, ${numClasses})`);
    }
  }
  const features = files.featureDtype === 'float32' ? new Float32Array(featureBytes) : new Uint8Array(featureBytes);
  return { files, features, labels, featureSize };
}

/** Reads a whole file into a fresh (hence aligned) buffer after checking its size. */
async function readExactly(
  file: string,
  expected: number,
  formula: string,
  corrupt: (message: string) => TrainingError,
): Promise<ArrayBuffer> {
  const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw corrupt(`${file} does not exist`);
    throw err;
  });
  try {
    const { size } = await handle.stat();
    if (size !== expected) throw corrupt(`${file} has ${size} bytes; expected ${formula} = ${expected}`);
    const buffer = new ArrayBuffer(expected);
    const view = new Uint8Array(buffer);
    // read() may return fewer bytes than asked (reads are capped at 2 GiB).
    for (let done = 0; done < expected; ) {
      const { bytesRead } = await handle.read(view, done, expected - done, done);
      if (bytesRead === 0) throw corrupt(`${file} ended after ${done} bytes; expected ${expected}`);
      done += bytesRead;
    }
    return buffer;
  } finally {
    await handle.close();
  }
}


export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

const IDX_TYPES: Record<number, { bytes: number; make: (n: number) => IdxData; get: (v: DataView, at: number) => number }> = {
  0x08: { bytes: 1, make: (n) => new Uint8Array(n), get: (v, at) => v.getUint8(at) },
  0x09: { bytes: 1, make: (n) => new Int8Array(n), get: (v, at) => v.getInt8(at) },
  0x0b: { bytes: 2, make: (n) => new Int16Array(n), get: (v, at) => v.getInt16(at) },
  0x0c: { bytes: 4, make: (n) => new Int32Array(n), get: (v, at) => v.getInt32(at) },
  0x0d: { bytes: 4, make: (n) => new Float32Array(n), get: (v, at) => v.getFloat32(at) },
  0x0e: { bytes: 8, make: (n) => new Float64Array(n), get: (v, at) => v.getFloat64(at) },
};

/** Reads an uncompressed IDX file (the MNIST format): big-endian header, dims, then values. */
export async function readIdx(file: string): Promise<{ shape: number[]; data: IdxData }> {
  const handle = await open(file, 'r');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array((await handle.stat()).size);
    for (let done = 0; done < bytes.length; ) {
      const { bytesRead } = await handle.read(bytes, done, bytes.length - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  const view = new DataView(bytes.buffer);
  if (bytes.length < 4 || view.getUint16(0) !== 0) throw new Error(`${file} is not an IDX file: it must start with two zero bytes`);
  const code = view.getUint8(2);
  const type = IDX_TYPES[code];
  if (type === undefined) throw new Error(`${file}: IDX type code 0x${code.toString(16)} is not one of 08, 09, 0b, 0c, 0d, 0e`);
  const rank = view.getUint8(3);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) throw new Error(`${file} has ${bytes.length} bytes; its header alone needs ${headerBytes}`);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * type.bytes;
  if (bytes.length !== expected) {
    throw new Error(`${file} has ${bytes.length} bytes; expected ${expected} for shape [${shape.join(', ')}] of ${type.bytes}-byte values`);
  }
  // Unsigned bytes need no byte-order conversion: hand out a view instead of a copy.
  if (code === 0x08) return { shape, data: bytes.subarray(headerBytes) };
  const data = type.make(count);
  for (let i = 0; i < count; i++) data[i] = type.get(view, headerBytes + i * type.bytes);
  return { shape, data };
}


/** One batch; `x`, `y` and `oneHot` are views of the batcher's buffers, overwritten by the next fill. */
export interface Batch {
  size: number;
  x: Float32Array;
  y: Int32Array;
  /** the labels one-hot, [size, numClasses] row by row */
  oneHot: Float32Array;
  /** [size, ...featureShape], ready to give to tf.tensor */
  shape: number[];
}

/**
 * Cuts a dataset into batches, in a seeded random order per epoch or in stored order.
 * Every epoch has ceil(numExamples / batchSize) steps; the last one may be short.
 */
export class Batcher {
  readonly steps: number;
  private readonly order: Uint32Array;
  private readonly full: Batch;
  private readonly tail: Batch;

  /** `seed` undefined keeps the stored order (evaluation). */
  constructor(
    private readonly data: Dataset,
    readonly batchSize: number,
    private readonly seed?: number,
  ) {
    const n = data.labels.length;
    this.steps = Math.ceil(n / batchSize);
    this.order = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.order[i] = i;
    const x = new Float32Array(batchSize * data.featureSize);
    const y = new Int32Array(batchSize);
    const classes = data.files.numClasses;
    const oneHot = new Float32Array(batchSize * classes);
    const shape = data.files.featureShape;
    this.full = { size: batchSize, x, y, oneHot, shape: [batchSize, ...shape] };
    // Preallocated too, so even the short last batch allocates nothing.
    const tailSize = n - (this.steps - 1) * batchSize;
    this.tail = { size: tailSize, x: x.subarray(0, tailSize * data.featureSize), y: y.subarray(0, tailSize), oneHot: oneHot.subarray(0, tailSize * classes), shape: [tailSize, ...shape] };
  }

  /**
   * Sets the order of `epoch` (from 1). It depends on (seed, epoch) only, not on earlier
   * epochs, so a job resumed at epoch e replays exactly the batches it would have seen.
   */
  shuffle(epoch: number): void {
    if (this.seed === undefined) return;
    const order = this.order;
    for (let i = 0; i < order.length; i++) order[i] = i;
    const random = mulberry32(Math.imul(this.seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch, 0xc2b2ae35));
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
  }

  /**
   * Fills the buffers with batch `step` (from 0) of the current order, preprocessed; with
   * `columns`, `x` holds the batch transposed, [featureSize, size] (Forward.takesColumns).
   */
  fill(step: number, columns = false): Batch {
    const batch = step === this.steps - 1 ? this.tail : this.full;
    const { features, labels, featureSize } = this.data;
    const { scale, offset } = this.data.files.preprocessing;
    const { x, y, oneHot } = batch;
    const classes = this.data.files.numClasses;
    const start = step * this.batchSize;
    oneHot.fill(0);
    for (let r = 0; r < batch.size; r++) {
      const example = this.order[start + r]!;
      y[r] = labels[example]!;
      oneHot[r * classes + y[r]!] = 1;
      const from = example * featureSize;
      if (columns) {
        for (let k = 0; k < featureSize; k++) x[k * batch.size + r] = features[from + k]! * scale + offset;
      } else {
        const to = r * featureSize;
        for (let k = 0; k < featureSize; k++) x[to + k] = features[from + k]! * scale + offset;
      }
    }
    return batch;
  }
}
