/**
 * Derived datasets: a transform of a ready dataset, computed once into its own compact form.
 * Order (documented in docs/datasets.md): split, classes, subset pick the examples (kept in
 * source order); then per example scale+rotate+translate, invert, noise change the values.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Transform } from '../../schemas/dataset-transform.js';
import { FEATURES_FILE, LABELS_FILE } from '../dataset-files.js';
import { DatasetWriter } from './dataset-writer.js';
import { hasGeometry, sourceGrid, warp } from './geometry.js';
import { IngestError } from './ingest-error.js';
import { checkOutputBytes, datasetBytes } from './output-limit.js';
import type { DeriveJob, IngestResult, SourceDataset } from './job.js';
import { gaussian, randomStream, shuffle } from './random.js';

function readAll(file: string, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const fd = openSync(file, 'r');
  try {
    for (let done = 0; done < bytes;) {
      const n = readSync(fd, out, done, bytes - done, done);
      if (n === 0) throw new Error(`${file} ends after ${done} bytes; expected ${bytes}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Indices per class, ascending. */
function byClass(labels: Int32Array, keep: Uint8Array, numClasses: number, label: (i: number) => number): number[][] {
  const groups = Array.from({ length: numClasses }, () => [] as number[]);
  for (let i = 0; i < labels.length; i++) if (keep[i]) groups[label(i)].push(i);
  return groups;
}

/** Which examples the transform keeps, in source order, and their new labels and classes. */
export function select(labels: Int32Array, classes: string[], t: Transform): { indices: number[]; newLabels: Int32Array; classes: string[] } {
  const n = labels.length;
  const seed = t.seed ?? 0;
  const keep = new Uint8Array(n).fill(1);
  const newLabels = Int32Array.from(labels);
  let outClasses = classes;

  if (t.split) {
    // stratified and drawn from the whole source, so both parts of one seed split the same way
    const random = randomStream(seed, 'split');
    const validation = new Uint8Array(n);
    for (const group of byClass(labels, keep, classes.length, (i) => labels[i])) {
      const share = Math.round(group.length * t.split.fraction);
      for (const i of shuffle(group, random).slice(0, share)) validation[i] = 1;
    }
    const wanted = t.split.part === 'validation' ? 1 : 0;
    for (let i = 0; i < n; i++) if (validation[i] !== wanted) keep[i] = 0;
  }

  if (t.classes) {
    const remap = t.classes.remap ?? true;
    const target = new Int32Array(classes.length).fill(-1);
    t.classes.keep.forEach((name, k) => {
      const old = classes.indexOf(name);
      target[old] = remap ? k : old;
    });
    for (let i = 0; i < n; i++) {
      const to = target[labels[i]];
      if (to < 0) keep[i] = 0;
      else newLabels[i] = to;
    }
    if (remap) outClasses = [...t.classes.keep];
  }

  if (t.subset) {
    const random = randomStream(seed, 'subset');
    const chosen = new Uint8Array(n);
    for (const group of byClass(newLabels, keep, outClasses.length, (i) => newLabels[i])) {
      if (group.length === 0) continue;
      const count = t.subset.perClass !== undefined ? Math.min(t.subset.perClass, group.length) : Math.max(1, Math.round(group.length * t.subset.fraction!));
      for (const i of shuffle(group, random).slice(0, count)) chosen[i] = 1;
    }
    for (let i = 0; i < n; i++) if (!chosen[i]) keep[i] = 0;
  }

  const indices: number[] = [];
  for (let i = 0; i < n; i++) if (keep[i]) indices.push(i);
  return { indices, newLabels, classes: outClasses };
}

/** Smallest and largest stored value, for inverting float data. */
function valueRange(file: string, source: SourceDataset, featureSize: number): [number, number] {
  const fd = openSync(file, 'r');
  let lo = Infinity;
  let hi = -Infinity;
  try {
    const per = Math.max(1, Math.floor((4 << 20) / (featureSize * 4)));
    const chunk = new Float32Array(per * featureSize);
    const bytes = new Uint8Array(chunk.buffer);
    for (let at = 0; at < source.numExamples; at += per) {
      const count = Math.min(per, source.numExamples - at);
      const got = readSync(fd, bytes, 0, count * featureSize * 4, at * featureSize * 4);
      for (let i = 0; i < got / 4; i++) {
        const v = chunk[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  } finally {
    closeSync(fd);
  }
  return [lo, hi];
}

export function derive(job: DeriveJob): IngestResult {
  const { source, transform: t } = job;
  const featureSize = source.featureShape.reduce((a, b) => a * b, 1);
  const labelBytes = readAll(join(source.dir, LABELS_FILE), source.numExamples * 4);
  const labels = new Int32Array(labelBytes.buffer, 0, source.numExamples);
  const { indices, newLabels, classes } = select(labels, source.classes, t);
  if (indices.length === 0) {
    throw new IngestError('empty', `the transform keeps none of the ${source.numExamples} examples of dataset ${source.id}; expected at least one`);
  }

  const geometric = hasGeometry(t);
  const image = source.imageShape;
  if (geometric && !image) throw new Error(`dataset ${source.id} has no image shape; the route should have refused the transform`);
  const grid = geometric ? sourceGrid(t, image![0], image![1]) : undefined;
  const featuresFile = join(source.dir, FEATURES_FILE);
  const uint8 = source.featureDtype === 'uint8';
  const [lo, hi] = t.invert ? (uint8 ? [0, 255] : valueRange(featuresFile, source, featureSize)) : [0, 0];
  const noise = t.noise && t.noise.sigma > 0 ? gaussian(randomStream(t.seed ?? 0, 'noise')) : undefined;
  const rawSigma = t.noise ? t.noise.sigma / Math.abs(source.preprocessing.scale || 1) : 0;

  const bytesPer = uint8 ? 1 : 4;
  const example = uint8 ? new Uint8Array(featureSize) : new Float32Array(featureSize);
  const exampleBytes = new Uint8Array(example.buffer);
  const values = new Float32Array(featureSize);
  checkOutputBytes(
    job.limit,
    datasetBytes(indices.length, featureSize, bytesPer),
    `the transform keeps ${indices.length} examples of ${featureSize} ${source.featureDtype} values`,
  );
  const writer = new DatasetWriter({ dir: job.outDir, featureSize, dtype: source.featureDtype, limit: job.limit });
  const fd = openSync(featuresFile, 'r');
  try {
    for (const i of indices) {
      const got = readSync(fd, exampleBytes, 0, exampleBytes.length, i * featureSize * bytesPer);
      if (got !== exampleBytes.length) throw new Error(`${featuresFile} ends inside example ${i}`);
      if (grid) warp(example, values, image![0], image![1], image![2], grid);
      else values.set(example);
      if (t.invert) for (let k = 0; k < featureSize; k++) values[k] = lo + hi - values[k];
      if (noise) for (let k = 0; k < featureSize; k++) values[k] = values[k] + rawSigma * noise();
      const slot = writer.slot();
      if (uint8) {
        for (let k = 0; k < featureSize; k++) {
          const v = Math.round(values[k]);
          slot[k] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
      } else {
        slot.set(values);
      }
      writer.commit(newLabels[i]);
    }
    const written = writer.finish(null, classes.length);
    return {
      numExamples: written.numExamples,
      featureShape: source.featureShape,
      featureDtype: source.featureDtype,
      // a square flat shape that was rotated or moved is evidently an image: say so from now on
      imageShape: source.recordedImageShape ?? (geometric ? image : null),
      classes,
      classCounts: written.classCounts,
      preprocessing: source.preprocessing,
    };
  } catch (err) {
    writer.abort();
    throw err;
  } finally {
    closeSync(fd);
  }
}
