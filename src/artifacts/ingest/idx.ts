/**
 * IDX uploads (the MNIST-family format): an `images` file of [count, ...item shape] values and
 * a `labels` file of [count] integers, each optionally gzipped, read side by side.
 */
import { ByteStream } from './byte-stream.js';
import { DatasetWriter } from './dataset-writer.js';
import { IngestError } from './ingest-error.js';
import type { IdxJob, IngestResult } from './job.js';
import { checkOutputBytes, datasetBytes } from './output-limit.js';
import { emptyClassProblem, LabelSet } from './label-set.js';

interface IdxType {
  name: string;
  bytes: number;
  integer: boolean;
  get: (v: DataView, at: number) => number;
}

const TYPES: Record<number, IdxType> = {
  0x08: { name: 'ubyte', bytes: 1, integer: true, get: (v, at) => v.getUint8(at) },
  0x09: { name: 'byte', bytes: 1, integer: true, get: (v, at) => v.getInt8(at) },
  0x0b: { name: 'short', bytes: 2, integer: true, get: (v, at) => v.getInt16(at) },
  0x0c: { name: 'int', bytes: 4, integer: true, get: (v, at) => v.getInt32(at) },
  0x0d: { name: 'float', bytes: 4, integer: false, get: (v, at) => v.getFloat32(at) },
  0x0e: { name: 'double', bytes: 8, integer: false, get: (v, at) => v.getFloat64(at) },
};

/** An item this large means a wrong header, not a real dataset. */
const MAX_ITEM_VALUES = 1 << 26;
const FLOAT32_MAX = 3.4028234663852886e38;

export interface IdxHeader {
  type: IdxType;
  dims: number[];
  /** where the values start */
  bytes: number;
}

/** The type and rank of the first 4 bytes (`got` of them were there). */
function magicOf(magic: Uint8Array, got: number, field: string): { type: IdxType; rank: number } {
  const hex = Array.from(magic.subarray(0, got), (b) => b.toString(16).padStart(2, '0')).join(' ');
  const type = TYPES[magic[2]];
  if (got < 4 || magic[0] !== 0 || magic[1] !== 0 || type === undefined || magic[3] === 0) {
    throw new IngestError(
      'not_idx',
      `${field} is not an IDX file: it must start with 00 00, a type code (08, 09, 0b, 0c, 0d or 0e) and a rank; it starts with ${hex || 'nothing'}`,
      {
        field,
      },
    );
  }
  return { type, rank: magic[3] };
}

function dimsOf(dimBytes: Uint8Array, rank: number, field: string): number[] {
  if (dimBytes.length < 4 * rank)
    throw new IngestError('truncated', `${field} ends inside its header: rank ${rank} needs ${rank} 4-byte dimensions`, { field });
  const view = new DataView(dimBytes.buffer, dimBytes.byteOffset, 4 * rank);
  return Array.from({ length: rank }, (_, i) => view.getUint32(4 * i));
}

/** The header of an IDX file held in memory (the built-in datasets' files). */
export function idxHeader(file: Uint8Array, field: string): IdxHeader {
  const { type, rank } = magicOf(file, Math.min(4, file.length), field);
  return { type, dims: dimsOf(file.subarray(4, 4 + 4 * rank), rank, field), bytes: 4 + 4 * rank };
}

async function readHeader(s: ByteStream, field: string): Promise<IdxHeader> {
  const magic = new Uint8Array(4);
  const { type, rank } = magicOf(magic, await s.read(magic), field);
  const dimBytes = new Uint8Array(4 * rank);
  const got = await s.read(dimBytes);
  return { type, dims: dimsOf(dimBytes.subarray(0, got), rank, field), bytes: 4 + 4 * rank };
}

export async function ingestIdx(job: IdxJob): Promise<IngestResult> {
  const images = new ByteStream(job.images, 'images');
  const labels = new ByteStream(job.labels, 'labels');
  let writer: DatasetWriter | undefined;
  try {
    const lh = await readHeader(labels, 'labels');
    const ih = await readHeader(images, 'images');
    if (lh.dims.length !== 1) {
      throw new IngestError('not_labels', `labels has shape [${lh.dims.join(', ')}]; expected rank 1, one label per item`, { field: 'labels' });
    }
    if (!lh.type.integer)
      throw new IngestError('not_labels', `labels holds ${lh.type.name} values; expected integers (type 08, 09, 0b or 0c)`, { field: 'labels' });
    if (ih.dims.length < 2) {
      throw new IngestError('not_idx', `images has shape [${ih.dims.join(', ')}]; expected [count, ...item shape], rank 2 or more`, { field: 'images' });
    }
    const count = ih.dims[0];
    const itemDims = ih.dims.slice(1);
    const itemSize = itemDims.reduce((a, b) => a * b, 1);
    if (itemSize === 0 || itemSize > MAX_ITEM_VALUES) {
      throw new IngestError('not_idx', `images declares items of shape [${itemDims.join(', ')}] (${itemSize} values); expected 1 to ${MAX_ITEM_VALUES}`, {
        field: 'images',
      });
    }
    if (lh.dims[0] !== count) {
      throw new IngestError('count_mismatch', `images holds ${count} items but labels holds ${lh.dims[0]} labels; they must pair up one to one`, {
        field: 'labels',
        expected: count,
        found: lh.dims[0],
      });
    }
    if (count === 0) throw new IngestError('empty', 'images and labels hold no items', { field: 'images' });

    const ubyte = ih.type.bytes === 1 && ih.type.name === 'ubyte';
    // the header says how large the dataset will be: refuse before writing a byte
    checkOutputBytes(
      job.limit,
      datasetBytes(count, itemSize, ubyte ? 1 : 4),
      `images declares ${count} items of [${itemDims.join(', ')}] ${ih.type.name} values`,
      {
        field: 'images',
      },
    );
    writer = new DatasetWriter({ dir: job.outDir, featureSize: itemSize, dtype: ubyte ? 'uint8' : 'float32', limit: job.limit, field: 'images' });
    const set = new LabelSet();
    const labelBytes = new Uint8Array(lh.type.bytes);
    const labelView = new DataView(labelBytes.buffer);
    const raw = ubyte ? undefined : new Uint8Array(itemSize * ih.type.bytes);
    const rawView = raw && new DataView(raw.buffer);
    const truncated = (field: string, index: number, type: IdxType, dims: number[], have: number) =>
      new IngestError(
        'truncated',
        `${field} ends inside item ${index} of ${count}: its header declares [${dims.join(', ')}] ${type.name} values, but the data stops after ${have} bytes`,
        { field, index, expected: count, found: index },
      );
    for (let i = 0; i < count; i++) {
      if ((await labels.read(labelBytes)) < labelBytes.length) throw truncated('labels', i, lh.type, lh.dims, labels.offset);
      const y = lh.type.get(labelView, 0);
      if (y < 0) throw new IngestError('invalid_label', `labels item ${i} is ${y}; labels must be non-negative integers`, { field: 'labels', index: i });
      const index = set.index(String(y));
      if (typeof index !== 'number') throw new IngestError(index.code, `labels item ${i}: ${index.message}`, { field: 'labels', index: i });

      const slot = writer.slot();
      if (ubyte) {
        if ((await images.read(slot as Uint8Array)) < itemSize) throw truncated('images', i, ih.type, ih.dims, images.offset);
      } else {
        if ((await images.read(raw!)) < raw!.length) throw truncated('images', i, ih.type, ih.dims, images.offset);
        for (let k = 0; k < itemSize; k++) {
          const v = ih.type.get(rawView!, k * ih.type.bytes);
          if (!(Math.abs(v) <= FLOAT32_MAX)) {
            throw new IngestError('not_finite', `images item ${i}, value ${k} is ${v}; expected a finite number within float32 range`, {
              field: 'images',
              index: i,
            });
          }
          slot[k] = v;
        }
      }
      writer.commit(index);
    }
    for (const [field, s] of [
      ['images', images],
      ['labels', labels],
    ] as const) {
      const extra = await s.remaining();
      if (extra > 0) {
        throw new IngestError('trailing_data', `${field} has ${extra} bytes after the ${count} items its header declares; expected the file to end there`, {
          field,
          expected: count,
        });
      }
    }
    const { classes, mapping } = set.finish();
    const written = writer.finish(mapping, classes.length);
    writer = undefined;
    const empty = emptyClassProblem(classes, written.classCounts, false);
    if (empty) throw new IngestError('class_without_examples', empty.message, { field: 'labels', class: empty.class });
    const imageShape =
      itemDims.length === 2 ? [itemDims[0], itemDims[1], 1] : itemDims.length === 3 && (itemDims[2] === 1 || itemDims[2] === 3) ? itemDims : null;
    return {
      numExamples: written.numExamples,
      featureShape: job.layout === 'image' && imageShape ? imageShape : [itemSize],
      featureDtype: written.featureDtype,
      imageShape,
      classes,
      classCounts: written.classCounts,
      preprocessing: job.preprocessing ?? (ubyte ? { scale: 2 / 255, offset: -1 } : { scale: 1, offset: 0 }),
    };
  } finally {
    writer?.abort();
    images.close();
    labels.close();
  }
}
