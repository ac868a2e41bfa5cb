/**
 * Datasets and the batches cut from them. A dataset is two flat files that map straight onto
 * typed arrays. Labels are always held; features are held in their stored type when small
 * (src/jobs/dataset-memory.ts) and otherwise read from features.bin example by example as each
 * batch is filled, so an image set never sits whole in memory, let alone as float32: a batch
 * becomes float32 (augmented, then preprocessed) when it is used.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import path from 'node:path';
import { mulberry32 } from '../../src/artifacts/ingest/random.js';
import { FEATURES_FILE, LABELS_FILE } from '../../src/artifacts/dataset-files.js';
import { keepsResident } from '../../src/jobs/dataset-memory.js';
import { channelAffine, channelProblem, type ChannelAffine } from '../../src/jobs/preprocessing.js';
import { TrainingError, type DatasetFiles } from '../../src/jobs/task.js';
import type { Augmenter } from './augment.js';
import { ByteLookup } from './byte-lookup.js';

export { FEATURES_FILE, LABELS_FILE, writeDatasetFiles } from '../../src/artifacts/dataset-files.js';

/**
 * features.bin left on disk: each batch opens it, reads its examples at their offsets and closes
 * it again, so a dataset holds no descriptor between batches and needs no closing.
 */
export class FeatureFile {
  constructor(
    readonly file: string,
    readonly dtype: 'uint8' | 'float32',
  ) {}
}

export interface Dataset {
  files: DatasetFiles;
  /** every example's values in memory (a small dataset), or where to read them */
  features: Uint8Array | Float32Array | FeatureFile;
  labels: Int32Array;
  /** elements in one example: the product of featureShape */
  featureSize: number;
}

export interface LoadOptions {
  /** hold the features in memory; default: when features.bin is at most RESIDENT_FEATURE_BYTES */
  resident?: boolean;
}

/**
 * Loads and validates a dataset. `param` is the JSON pointer of the spec field that named it
 * (e.g. `/data/train`), so a corrupt file is blamed on the right part of the job.
 */
export async function loadDataset(files: DatasetFiles, param: string, opts: LoadOptions = {}): Promise<Dataset> {
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
  const wrongPreprocessing = channelProblem(files.preprocessing, channelsOf(files));
  if (wrongPreprocessing)
    throw new TrainingError('incompatible_dataset', `dataset ${files.id} is fed with preprocessing that ${wrongPreprocessing}`, { param });

  const featuresFile = path.join(files.dir, FEATURES_FILE);
  const featureBytes = numExamples * featureSize * bytesPerFeature;
  const formula = `numExamples × prod(featureShape) × ${bytesPerFeature} = ${numExamples} × ${featureSize} × ${bytesPerFeature}`;
  let features: Dataset['features'];
  if (opts.resident ?? keepsResident(files)) {
    const bytes = await readExactly(featuresFile, featureBytes, formula, corrupt);
    features = files.featureDtype === 'float32' ? new Float32Array(bytes) : new Uint8Array(bytes);
  } else {
    await checkSize(featuresFile, featureBytes, formula, corrupt);
    features = new FeatureFile(featuresFile, files.featureDtype);
  }
  const labelBytes = await readExactly(path.join(files.dir, LABELS_FILE), numExamples * 4, `numExamples × 4 = ${numExamples} × 4`, corrupt);

  const labels = new Int32Array(labelBytes);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label < 0 || label >= numClasses) {
      throw corrupt(`${LABELS_FILE} in ${files.dir}: example ${i} has label ${label}; expected an integer in [0, ${numClasses})`);
    }
  }
  return { files, features, labels, featureSize };
}

/** Channels of one example, last in its shape: those of its image, else 1 (values that are not images). */
function channelsOf(files: DatasetFiles): number {
  const image = files.imageShape;
  return image?.length === 3 ? image[2] : 1;
}

/** Opens a dataset file after checking that it exists and has the size its descriptor implies. */
async function openChecked(file: string, expected: number, formula: string, corrupt: (message: string) => TrainingError): Promise<FileHandle> {
  const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw corrupt(`${file} does not exist`);
    throw err;
  });
  const { size } = await handle.stat();
  if (size === expected) return handle;
  await handle.close();
  throw corrupt(`${file} has ${size} bytes; expected ${formula} = ${expected}`);
}

async function checkSize(file: string, expected: number, formula: string, corrupt: (message: string) => TrainingError): Promise<void> {
  await (await openChecked(file, expected, formula, corrupt)).close();
}

/** Reads a whole file into a fresh (hence aligned) buffer after checking its size. */
async function readExactly(file: string, expected: number, formula: string, corrupt: (message: string) => TrainingError): Promise<ArrayBuffer> {
  const handle = await openChecked(file, expected, formula, corrupt);
  try {
    const buffer = new ArrayBuffer(expected);
    const view = new Uint8Array(buffer);
    // read() may return fewer bytes than asked (reads are capped at 2 GiB).
    for (let done = 0; done < expected;) {
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
    for (let done = 0; done < bytes.length;) {
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

export interface BatcherOptions {
  /** shuffle with this seed (per epoch); undefined keeps the stored order (evaluation) */
  seed?: number;
  /** augments every example of every batch, seeded by (seed, epoch, step) */
  augment?: Augmenter;
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
  private readonly seed: number | undefined;
  private readonly augment: Augmenter | undefined;
  private readonly affine: ChannelAffine;
  /** with one channel, every byte's preprocessed value, as the affine computes it: a uint8 example is then one lookup a value */
  private readonly byteValues: Float64Array | undefined;
  /** where a batch of uint8 examples goes through byteValues, when they are not augmented and the batch is not too large */
  private readonly lookup: ByteLookup | undefined;
  /** one example's values before preprocessing (read from disk, or augmented) */
  private readonly example: Float32Array;
  private readonly source: Source;
  /** the epoch (or pass) the order was shuffled for; seeds augmentation */
  private epoch = 0;

  constructor(
    private readonly data: Dataset,
    readonly batchSize: number,
    opts: BatcherOptions = {},
  ) {
    this.seed = opts.seed;
    this.augment = opts.augment;
    const n = data.labels.length;
    this.steps = Math.ceil(n / batchSize);
    this.order = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.order[i] = i;
    const image = data.files.imageShape;
    this.affine = channelAffine(data.files.preprocessing, image?.length === 3 ? image[2] : 1);
    const [scale, offset] = [this.affine.scale[0], this.affine.offset[0]];
    this.byteValues = this.affine.scale.length === 1 ? Float64Array.from({ length: 256 }, (_, v) => v * scale + offset) : undefined;
    // uint8 examples not augmented go through the table in a kernel; augmented ones are float32 by then
    this.lookup =
      this.byteValues && !this.augment && data.files.featureDtype === 'uint8' ? ByteLookup.for(this.byteValues, batchSize, data.featureSize) : undefined;
    const x = this.lookup?.x ?? new Float32Array(batchSize * data.featureSize);
    const y = new Int32Array(batchSize);
    const classes = data.files.numClasses;
    const oneHot = new Float32Array(batchSize * classes);
    const shape = data.files.featureShape;
    this.full = { size: batchSize, x, y, oneHot, shape: [batchSize, ...shape] };
    // Preallocated too, so even the short last batch allocates nothing.
    const tailSize = n - (this.steps - 1) * batchSize;
    this.tail = {
      size: tailSize,
      x: x.subarray(0, tailSize * data.featureSize),
      y: y.subarray(0, tailSize),
      oneHot: oneHot.subarray(0, tailSize * classes),
      shape: [tailSize, ...shape],
    };
    this.example = new Float32Array(data.featureSize);
    const features = data.features;
    if (!(features instanceof FeatureFile)) this.source = { kind: 'memory', values: features };
    // float32 examples are read straight into `example`'s bytes, uint8 ones into their own
    else if (features.dtype === 'float32')
      this.source = { kind: 'file', file: features.file, bytes: new Uint8Array(this.example.buffer), values: this.example };
    else {
      const bytes = new Uint8Array(data.featureSize);
      this.source = { kind: 'file', file: features.file, bytes, values: bytes };
    }
  }

  /**
   * Sets the order of `epoch` (from 1). It depends on (seed, epoch) only, not on earlier
   * epochs, so a job resumed at epoch e replays exactly the batches it would have seen.
   */
  shuffle(epoch: number): void {
    this.epoch = epoch;
    if (this.seed === undefined) return;
    const order = this.order;
    for (let i = 0; i < order.length; i++) order[i] = i;
    const random = mulberry32(Math.imul(this.seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch, 0xc2b2ae35));
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i];
      order[i] = order[j]!;
      order[j] = t;
    }
  }

  /**
   * Fills the buffers with batch `step` (from 0) of the current order, augmented and
   * preprocessed.
   */
  fill(step: number): Batch {
    const batch = step === this.steps - 1 ? this.tail : this.full;
    const { labels, featureSize } = this.data;
    const { scale, offset } = this.affine;
    const channels = scale.length;
    const { x, y, oneHot } = batch;
    const classes = this.data.files.numClasses;
    const start = step * this.batchSize;
    const reader = this.open();
    try {
      this.augment?.begin(this.seed ?? 0, this.epoch, step);
      oneHot.fill(0);
      for (let r = 0; r < batch.size; r++) {
        const example = this.order[start + r];
        y[r] = labels[example]!;
        oneHot[r * classes + y[r]] = 1;
        let values = reader.read(example);
        if (this.augment) {
          if (values !== this.example) this.example.set(values);
          values = this.example;
          this.augment.apply(values);
        }
        const bytes = values instanceof Uint8Array ? this.byteValues : undefined;
        if (this.lookup !== undefined && values instanceof Uint8Array) this.lookup.put(r, values);
        else if (bytes !== undefined) {
          for (let k = 0, to = r * featureSize; k < featureSize; k++) x[to + k] = bytes[values[k]]!;
        } else {
          const to = r * featureSize;
          for (let k = 0; k < featureSize; k++) x[to + k] = values[k] * scale[k % channels] + offset[k % channels];
        }
      }
      this.lookup?.convert(batch.size);
    } finally {
      reader.close();
    }
    return batch;
  }

  /** A reader of examples' stored values for one fill: views of the features in memory, or reads of features.bin. */
  private open(): { read(i: number): Uint8Array | Float32Array; close(): void } {
    const { source } = this;
    const size = this.data.featureSize;
    if (source.kind === 'memory') return { read: (i) => source.values.subarray(i * size, (i + 1) * size), close: () => undefined };
    const fd = openSync(source.file, 'r');
    const { bytes, values } = source;
    return {
      read: (i) => {
        for (let done = 0; done < bytes.length;) {
          const n = readSync(fd, bytes, done, bytes.length - done, i * bytes.length + done);
          if (n === 0) throw new TrainingError('dataset_corrupt', `dataset ${this.data.files.id}: ${source.file} ended inside example ${i}`);
          done += n;
        }
        return values;
      },
      close: () => closeSync(fd),
    };
  }
}

/** Rows `rows` of `data` as a dataset of their own held in memory, in that order (read from features.bin when it stays on disk). */
export function subset(data: Dataset, rows: readonly number[]): Dataset {
  const size = data.featureSize;
  const { features } = data;
  const float = features instanceof FeatureFile ? features.dtype === 'float32' : features instanceof Float32Array;
  const out = float ? new Float32Array(rows.length * size) : new Uint8Array(rows.length * size);
  const labels = new Int32Array(rows.length);
  const fd = features instanceof FeatureFile ? openSync(features.file, 'r') : undefined;
  try {
    rows.forEach((row, i) => {
      labels[i] = data.labels[row]!;
      if (!(features instanceof FeatureFile)) return out.set(features.subarray(row * size, (row + 1) * size), i * size);
      const bytes = new Uint8Array(out.buffer, i * size * out.BYTES_PER_ELEMENT, size * out.BYTES_PER_ELEMENT);
      for (let done = 0; done < bytes.length;) {
        const n = readSync(fd!, bytes, done, bytes.length - done, row * bytes.length + done);
        if (n === 0) throw new TrainingError('dataset_corrupt', `dataset ${data.files.id}: ${features.file} ended inside example ${row}`);
        done += n;
      }
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return { files: { ...data.files, numExamples: rows.length }, features: out, labels, featureSize: size };
}

/** Where a batcher reads examples from; `values` is `bytes` seen as the stored type. */
type Source = { kind: 'memory'; values: Uint8Array | Float32Array } | { kind: 'file'; file: string; bytes: Uint8Array; values: Uint8Array | Float32Array };
