/**
 * Writes the compact form (features.bin, labels.bin) example by example, through fixed-size
 * buffers, so converting a dataset of any size takes a few megabytes. Runs in a conversion
 * worker thread, where blocking file calls block nobody.
 */
import { closeSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { FEATURES_FILE, LABELS_FILE } from '../dataset-files.js';
import { checkOutputBytes, datasetBytes, type OutputLimit } from './output-limit.js';

const BUFFER_BYTES = 4 << 20;
const WIDE_FILE = 'features.f32.tmp';

export interface WrittenDataset {
  numExamples: number;
  featureDtype: 'uint8' | 'float32';
  classCounts: number[];
}

export interface DatasetWriterOptions {
  dir: string;
  featureSize: number;
  /** how examples are handed in */
  dtype: 'uint8' | 'float32';
  /**
   * float32 data whose values all turn out to be integers in 0..255 is stored as uint8
   * (a quarter of the size for the training child)
   */
  narrow?: boolean;
  /** checked before every example: the files never grow past it */
  limit: OutputLimit;
  /** the upload field the examples come from, for the error's location */
  field?: string;
}

export class DatasetWriter {
  /** examples committed so far */
  count = 0;
  readonly featureSize: number;
  readonly dtype: 'uint8' | 'float32';
  private readonly dir: string;
  private readonly narrow: boolean;
  private readonly limit: OutputLimit;
  private readonly field: string | undefined;
  private readonly fd: number;
  private readonly labelsFd: number;
  private readonly buffer: Float32Array | Uint8Array;
  private used = 0;
  private readonly labels = new Int32Array(64 * 1024);
  private labelsUsed = 0;
  /** every value so far is an integer in 0..255, so the data can be stored as uint8 */
  private bytesSuffice = true;

  constructor(o: DatasetWriterOptions) {
    if (endianness() !== 'LE') throw new Error('datasets can only be written on a little-endian host');
    ({ dir: this.dir, featureSize: this.featureSize, dtype: this.dtype, limit: this.limit, field: this.field } = o);
    this.narrow = o.narrow ?? false;
    const { featureSize, dtype, dir } = this;
    const elements = Math.max(featureSize, Math.floor(BUFFER_BYTES / (dtype === 'float32' ? 4 : 1)));
    this.buffer = dtype === 'float32' ? new Float32Array(elements) : new Uint8Array(elements);
    this.fd = openSync(join(dir, this.narrowing ? WIDE_FILE : FEATURES_FILE), 'w');
    this.labelsFd = openSync(join(dir, LABELS_FILE), 'w');
  }

  private get narrowing(): boolean {
    return this.narrow && this.dtype === 'float32';
  }

  /** Where to put the next example's values; valid until commit(). Refuses an example over the limit. */
  slot(): Float32Array | Uint8Array {
    // counted as handed in: float32 data narrowed at the end is on disk as float32 until then
    const bytes = datasetBytes(this.count + 1, this.featureSize, this.buffer.BYTES_PER_ELEMENT);
    checkOutputBytes(this.limit, bytes, `example ${this.count + 1} (${this.featureSize} values) makes the dataset grow`, {
      ...(this.field ? { field: this.field } : {}),
      index: this.count,
    });
    if (this.used + this.featureSize > this.buffer.length) this.flushFeatures();
    return this.buffer.subarray(this.used, this.used + this.featureSize);
  }

  commit(label: number): void {
    if (this.narrowing && this.bytesSuffice) {
      const b = this.buffer;
      for (let i = this.used, end = this.used + this.featureSize; i < end; i++) {
        const v = b[i];
        if (!(v >= 0 && v <= 255 && Math.floor(v) === v)) {
          this.bytesSuffice = false;
          break;
        }
      }
    }
    this.used += this.featureSize;
    if (this.labelsUsed === this.labels.length) this.flushLabels();
    this.labels[this.labelsUsed++] = label;
    this.count++;
  }

  private flushFeatures(): void {
    const b = this.buffer;
    writeAll(this.fd, new Uint8Array(b.buffer, b.byteOffset, this.used * b.BYTES_PER_ELEMENT));
    this.used = 0;
  }

  private flushLabels(): void {
    writeAll(this.labelsFd, new Uint8Array(this.labels.buffer, 0, this.labelsUsed * 4));
    this.labelsUsed = 0;
  }

  /** Closes without finishing (the caller's temp dir is removed anyway). */
  abort(): void {
    closeQuietly(this.fd);
    closeQuietly(this.labelsFd);
  }

  /**
   * Flushes, narrows to uint8 when possible, and rewrites labels from provisional to final
   * indices with `mapping` (null: they are final already). Returns the counts per class.
   */
  finish(mapping: Int32Array | null, numClasses: number): WrittenDataset {
    this.flushFeatures();
    this.flushLabels();
    closeSync(this.fd);
    closeSync(this.labelsFd);
    let featureDtype = this.dtype;
    if (this.narrowing) {
      if (this.bytesSuffice) {
        narrowFile(join(this.dir, WIDE_FILE), join(this.dir, FEATURES_FILE));
        featureDtype = 'uint8';
      } else {
        renameSync(join(this.dir, WIDE_FILE), join(this.dir, FEATURES_FILE));
      }
    }
    return { numExamples: this.count, featureDtype, classCounts: relabel(join(this.dir, LABELS_FILE), mapping, numClasses) };
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** Reads `file` in whole chunks (a short read is retried until the chunk is full or the file ends). */
function* chunks(fd: number, chunk: Uint8Array): Generator<Uint8Array> {
  for (;;) {
    let got = 0;
    while (got < chunk.length) {
      const n = readSync(fd, chunk, got, chunk.length - got, null);
      if (n === 0) break;
      got += n;
    }
    if (got === 0) return;
    yield chunk.subarray(0, got);
    if (got < chunk.length) return;
  }
}

function narrowFile(from: string, to: string): void {
  const input = openSync(from, 'r');
  const output = openSync(to, 'w');
  try {
    const bytes = new Uint8Array(BUFFER_BYTES);
    const narrow = new Uint8Array(BUFFER_BYTES / 4);
    for (const got of chunks(input, bytes)) {
      const values = new Float32Array(got.buffer, 0, got.length / 4);
      for (let i = 0; i < values.length; i++) narrow[i] = values[i]!;
      writeAll(output, narrow.subarray(0, values.length));
    }
  } finally {
    closeSync(input);
    closeSync(output);
  }
  unlinkSync(from);
}

function relabel(file: string, mapping: Int32Array | null, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  const fd = openSync(file, mapping ? 'r+' : 'r');
  try {
    const bytes = new Uint8Array(BUFFER_BYTES);
    let position = 0;
    for (const got of chunks(fd, bytes)) {
      const labels = new Int32Array(got.buffer, 0, got.length / 4);
      for (let i = 0; i < labels.length; i++) {
        const y = mapping ? mapping[labels[i]] : labels[i];
        labels[i] = y;
        counts[y]++;
      }
      if (mapping) {
        for (let done = 0; done < got.length;) done += writeSync(fd, got, done, got.length - done, position + done);
      }
      position += got.length;
    }
  } finally {
    closeSync(fd);
  }
  return counts;
}
