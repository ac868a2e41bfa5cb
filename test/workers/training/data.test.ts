import assert from 'node:assert/strict';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Batcher, FeatureFile, loadDataset, readIdx, writeDatasetFiles, type Dataset } from '../../../workers/training/data.js';
import { RESIDENT_FEATURE_BYTES } from '../../../src/jobs/dataset-memory.js';
import { TrainingError, type DatasetFiles } from '../../../src/jobs/task.js';
import { MNIST_DIR, tempDir } from './fixtures.js';

function descriptor(dir: string, numExamples: number, featureShape: number[], featureDtype: 'uint8' | 'float32', numClasses = 10): DatasetFiles {
  return {
    id: path.basename(dir),
    dir,
    numExamples,
    featureShape,
    featureDtype,
    numClasses,
    classes: Array.from({ length: numClasses }, (_, i) => `c${i}`),
    preprocessing: { scale: 1, offset: 0 },
  };
}

/** Example i has every feature equal to i, so a batch shows which examples it holds. */
async function indexDataset(root: string, n: number, featureSize = 3): Promise<Dataset> {
  const features = new Float32Array(n * featureSize).map((_, k) => Math.floor(k / featureSize));
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  const dir = path.join(root, `index-${n}`);
  await writeDatasetFiles(dir, features, labels);
  return loadDataset(descriptor(dir, n, [featureSize], 'float32', 4), '/data/train');
}

function batchIndices(batcher: Batcher, featureSize = 3): number[] {
  const seen: number[] = [];
  for (let s = 0; s < batcher.steps; s++) {
    const batch = batcher.fill(s);
    for (let r = 0; r < batch.size; r++) seen.push(batch.x[r * featureSize]);
  }
  return seen;
}

async function rejectsCorrupt(promise: Promise<unknown>, param: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof TrainingError, `expected a TrainingError, got ${String(err)}`);
    assert.equal(err.code, 'dataset_corrupt');
    assert.equal(err.param, param);
    assert.match(err.message, pattern);
    assert.equal(err.name, 'UnrecoverableError');
    return true;
  });
}

test('readIdx reads the MNIST files and rejects a truncated one', async () => {
  const labels = await readIdx(path.join(MNIST_DIR, 'train-labels-idx1-ubyte'));
  assert.deepEqual(labels.shape, [60000]);
  assert.deepEqual(Array.from(labels.data.subarray(0, 5)), [5, 0, 4, 1, 9]);
  const images = await readIdx(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
  assert.deepEqual(images.shape, [10000, 28, 28]);
  assert.ok(images.data instanceof Uint8Array);
  assert.equal(images.data.length, 10000 * 784);

  const dir = await tempDir();
  const bytes = await readFile(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
  await writeFile(path.join(dir, 'short'), bytes.subarray(0, 1000));
  await assert.rejects(readIdx(path.join(dir, 'short')), /has 1000 bytes; expected 10008 for shape \[10000\]/);
});

test('readIdx converts big-endian multi-byte values', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'floats.idx');
  const view = new DataView(new ArrayBuffer(4 + 8 + 4 * 6));
  view.setUint8(2, 0x0d);
  view.setUint8(3, 2);
  view.setUint32(4, 2);
  view.setUint32(8, 3);
  [0.5, -1, 2, 3.25, 0, 100].forEach((v, i) => view.setFloat32(12 + 4 * i, v));
  await writeFile(file, new Uint8Array(view.buffer));
  const { shape, data } = await readIdx(file);
  assert.deepEqual(shape, [2, 3]);
  assert.ok(data instanceof Float32Array);
  assert.deepEqual(Array.from(data), [0.5, -1, 2, 3.25, 0, 100]);
});

test('writeDatasetFiles and loadDataset round-trip uint8 and float32 features', async () => {
  const root = await tempDir();
  const bytes = Uint8Array.from({ length: 6 * 4 }, (_, i) => (i * 7) % 256);
  const labels = Int32Array.from([0, 1, 2, 0, 1, 2]);
  await writeDatasetFiles(path.join(root, 'u8'), bytes, labels);
  const u8 = await loadDataset(descriptor(path.join(root, 'u8'), 6, [2, 2], 'uint8', 3), '/data/train');
  assert.ok(u8.features instanceof Uint8Array);
  assert.deepEqual(Array.from(u8.features), Array.from(bytes));
  assert.deepEqual(Array.from(u8.labels), Array.from(labels));
  assert.equal(u8.featureSize, 4);

  const floats = Float32Array.from({ length: 6 * 4 }, (_, i) => i / 3 - 2);
  await writeDatasetFiles(path.join(root, 'f32'), floats, labels);
  const f32 = await loadDataset(descriptor(path.join(root, 'f32'), 6, [4], 'float32', 3), '/data/validation');
  assert.ok(f32.features instanceof Float32Array);
  assert.deepEqual(Array.from(f32.features), Array.from(floats));
});

test('loadDataset names the file, the field and the expectation when a dataset is corrupt', async () => {
  const root = await tempDir();
  const dir = path.join(root, 'ds');
  await writeDatasetFiles(
    dir,
    new Uint8Array(10 * 4),
    Int32Array.from({ length: 10 }, (_, i) => i % 3),
  );
  const files = descriptor(dir, 10, [4], 'uint8', 3);
  await loadDataset(files, '/data/train');

  await rejectsCorrupt(loadDataset({ ...files, numExamples: 11 }, '/data/train'), '/data/train', /features\.bin has 40 bytes; expected .* = 11 × 4 × 1 = 44/);
  await rejectsCorrupt(loadDataset({ ...files, featureDtype: 'float32' }, '/data/test'), '/data/test', /expected .*= 160/);
  await rejectsCorrupt(
    loadDataset({ ...files, numClasses: 2 }, '/data/validation'),
    '/data/validation',
    /example 2 has label 2; expected an integer in \[0, 2\)/,
  );
  await rejectsCorrupt(loadDataset({ ...files, dir: path.join(root, 'missing') }, '/data/train'), '/data/train', /features\.bin does not exist/);

  await truncate(path.join(dir, 'labels.bin'), 36);
  await rejectsCorrupt(loadDataset(files, '/data/train'), '/data/train', /labels\.bin has 36 bytes; expected numExamples × 4 = 10 × 4 = 40/);
  await writeFile(path.join(dir, 'labels.bin'), new Uint8Array(Int32Array.from([0, 1, 2, 0, 1, -1, 0, 1, 2, 0]).buffer));
  await rejectsCorrupt(loadDataset(files, '/data/train'), '/data/train', /example 5 has label -1/);
});

test('a batcher visits every example once per epoch, in an order fixed by (seed, epoch) alone', async () => {
  const root = await tempDir();
  const data = await indexDataset(root, 100);
  const batcher = new Batcher(data, 16, { seed: 42 });
  assert.equal(batcher.steps, 7);
  const orders = new Map<number, number[]>();
  for (const epoch of [1, 2, 3]) {
    batcher.shuffle(epoch);
    const order = batchIndices(batcher);
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i),
    );
    orders.set(epoch, order);
  }
  assert.notDeepEqual(orders.get(1), orders.get(2));
  assert.notDeepEqual(
    orders.get(1),
    Array.from({ length: 100 }, (_, i) => i),
  );

  const resumed = new Batcher(data, 16, { seed: 42 });
  resumed.shuffle(3);
  assert.deepEqual(batchIndices(resumed), orders.get(3), 'epoch 3 replays without epochs 1 and 2');
  const otherSeed = new Batcher(data, 16, { seed: 43 });
  otherSeed.shuffle(3);
  assert.notDeepEqual(batchIndices(otherSeed), orders.get(3));

  const stored = new Batcher(data, 16);
  stored.shuffle(5);
  assert.deepEqual(
    batchIndices(stored),
    Array.from({ length: 100 }, (_, i) => i),
  );
});

test('a batcher reuses one buffer, cuts a short last batch, applies the preprocessing and lays batches out as rows or columns', async () => {
  const root = await tempDir();
  const data = await indexDataset(root, 10, 2);
  const scaled: Dataset = { ...data, files: { ...data.files, preprocessing: { scale: 2, offset: -1 } } };
  const batcher = new Batcher(scaled, 4);
  assert.equal(batcher.steps, 3);
  const first = batcher.fill(0);
  assert.equal(first.size, 4);
  assert.deepEqual(first.shape, [4, 2]);
  assert.deepEqual(Array.from(first.x), [-1, -1, 1, 1, 3, 3, 5, 5]);
  assert.deepEqual(Array.from(first.y), [0, 1, 2, 3]);
  assert.deepEqual(Array.from(first.oneHot), [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
  const last = batcher.fill(2);
  assert.equal(last.size, 2);
  assert.deepEqual(last.shape, [2, 2]);
  assert.deepEqual(Array.from(last.x), [15, 15, 17, 17]);
  assert.deepEqual(Array.from(last.y), [0, 1]);
  assert.deepEqual(Array.from(last.oneHot), [1, 0, 0, 0, 0, 1, 0, 0]);
  assert.equal(last.x.buffer, first.x.buffer, 'the short batch is a view of the same buffer');
});

test('one-channel uint8 examples are preprocessed through a table of byte values: every byte gives the float32 value of the affine', async () => {
  const root = await tempDir();
  // 4 examples of 64 values: every byte once
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => (i * 7) % 256);
  await writeDatasetFiles(path.join(root, 'bytes'), bytes, Int32Array.from([0, 1, 2, 3]));
  const files = { ...descriptor(path.join(root, 'bytes'), 4, [64], 'uint8', 4), preprocessing: { scale: 2 / 255, offset: -1 } };
  const [scale, offset] = [Math.fround(2 / 255), Math.fround(-1)];
  const expected = Float32Array.from(bytes, (v) => v * scale + offset);
  for (const resident of [true, false]) {
    const batcher = new Batcher(await loadDataset(files, '/data/train', { resident }), 4);
    assert.deepEqual(batcher.fill(0).x, expected, resident ? 'in memory' : 'from disk');
  }
});

test('uint8 batches of any size go through the byte table exactly: 13 values an example (not a multiple of 4), a short last batch, shuffled, in memory and from disk', async () => {
  const root = await tempDir();
  const [n, size] = [23, 13];
  const bytes = Uint8Array.from({ length: n * size }, (_, i) => (i * 101 + 7) % 256);
  await writeDatasetFiles(
    path.join(root, 'odd'),
    bytes,
    Int32Array.from({ length: n }, (_, i) => i % 3),
  );
  // the affine's float32 scale and offset, the value in double precision, stored as float32
  const value = (v: number) => Math.fround(v * Math.fround(1 / 255) + Math.fround(-0.5));
  const files = { ...descriptor(path.join(root, 'odd'), n, [size], 'uint8', 3), preprocessing: { scale: 1 / 255, offset: -0.5 } };
  for (const resident of [true, false]) {
    const batcher = new Batcher(await loadDataset(files, '/data/train', { resident }), 5, { seed: 3 });
    batcher.shuffle(1);
    const seen: number[] = [];
    for (let step = 0; step < batcher.steps; step++) {
      const batch = batcher.fill(step);
      for (let r = 0; r < batch.size; r++) {
        // which example this row is: its first byte's value is unique among the examples' first bytes
        const example = Array.from({ length: n }, (_, e) => e).find((e) => value(bytes[e * size]) === batch.x[r * size])!;
        seen.push(example);
        const expected = Float32Array.from(bytes.subarray(example * size, (example + 1) * size), value);
        assert.deepEqual(batch.x.subarray(r * size, (r + 1) * size), expected, `${resident ? 'in memory' : 'from disk'}: step ${step}, row ${r}`);
      }
    }
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      Array.from({ length: n }, (_, e) => e),
      'every example once',
    );
  }
});

test('features read from disk per batch give the batches of features held in memory, uint8 and float32 alike', async () => {
  const root = await tempDir();
  const labels = Int32Array.from({ length: 37 }, (_, i) => i % 3);
  const bytes = Uint8Array.from({ length: 37 * 12 }, (_, i) => (i * 13) % 256);
  await writeDatasetFiles(path.join(root, 'u8'), bytes, labels);
  const floats = Float32Array.from({ length: 37 * 12 }, (_, i) => i / 7 - 3);
  await writeDatasetFiles(path.join(root, 'f32'), floats, labels);
  for (const dtype of ['uint8', 'float32'] as const) {
    const files = {
      ...descriptor(path.join(root, dtype === 'uint8' ? 'u8' : 'f32'), 37, [2, 2, 3], dtype, 3),
      imageShape: [2, 2, 3],
      preprocessing: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.5] },
    };
    const held = await loadDataset(files, '/data/train', { resident: true });
    const onDisk = await loadDataset(files, '/data/train', { resident: false });
    assert.ok(onDisk.features instanceof FeatureFile, 'read per batch');
    const [a, b] = [new Batcher(held, 8, { seed: 9 }), new Batcher(onDisk, 8, { seed: 9 })];
    for (const epoch of [1, 2]) {
      a.shuffle(epoch);
      b.shuffle(epoch);
      for (let step = 0; step < a.steps; step++) {
        assert.deepEqual(Array.from(b.fill(step).x), Array.from(a.fill(step).x), `${dtype} epoch ${epoch} step ${step}`);
      }
    }
  }
  // per channel, (v / 255 - mean[c]) / std[c]: example 0 of the uint8 set is 0, 13, 26, 39, ...
  const files = {
    ...descriptor(path.join(root, 'u8'), 37, [12], 'uint8', 3),
    imageShape: [2, 2, 3],
    preprocessing: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.5] },
  };
  const x = new Batcher(await loadDataset(files, '/data/train'), 1).fill(0).x;
  const expected = [0, 13, 26, 39].map((v, k) => (v / 255 - [0.5, 0.4, 0.3][k % 3]) / [0.2, 0.25, 0.5][k % 3]);
  expected.forEach((v, k) => assert.ok(Math.abs(x[k] - v) < 1e-5, `value ${k}: ${x[k]} vs ${v}`));
});

test('a dataset past RESIDENT_FEATURE_BYTES stays on disk: loading it and filling batches holds a batch, not the set (let alone as float32)', async () => {
  const root = await tempDir();
  const dir = path.join(root, 'photos');
  // 600 examples of 224x224x3 uint8: 90 MB stored, 361 MB as float32; written sparse, so quickly
  const n = 600;
  const size = 224 * 224 * 3;
  await writeDatasetFiles(
    dir,
    new Uint8Array(0),
    Int32Array.from({ length: n }, (_, i) => i % 2),
  );
  await truncate(path.join(dir, 'features.bin'), n * size);
  const files = { ...descriptor(dir, n, [224, 224, 3], 'uint8', 2), imageShape: [224, 224, 3], preprocessing: { range: [-1, 1] } };
  assert.ok(n * size > RESIDENT_FEATURE_BYTES);
  const before = process.memoryUsage().arrayBuffers;
  const data = await loadDataset(files, '/data/train');
  assert.ok(data.features instanceof FeatureFile);
  const batcher = new Batcher(data, 16, { seed: 1 });
  batcher.shuffle(1);
  for (let step = 0; step < batcher.steps; step++) {
    const batch = batcher.fill(step);
    assert.equal(batch.x[0], -1, 'zero pixels mapped onto -1');
  }
  const grew = process.memoryUsage().arrayBuffers - before;
  const batchBytes = 16 * size * 4;
  assert.ok(
    grew < batchBytes + 8 * 2 ** 20,
    `array buffers grew by ${grew} bytes; one batch is ${batchBytes}, the set ${n * size} stored and ${n * size * 4} as float32`,
  );
});
