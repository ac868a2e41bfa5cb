/**
 * A page of a dataset's examples as a person wants to see them: values, label, class name and,
 * for images, a small PNG preview. Bounded however large the examples are: a preview is at most
 * PREVIEW_MAX_SIDE pixels a side (sampled from the stored image, so its cost does not grow with
 * the image), the page holds only as many examples as fit PAGE_MAX_BYTES of JSON, and each
 * example is read alone, so the API thread's work per request is bounded; PNG encoding runs on
 * libuv's pool (sharp).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FEATURES_FILE, LABELS_FILE } from './dataset-files.js';
import { imageShapeOf } from './image-shape.js';

export const PREVIEW_MAX_SIDE = 64;
export const PAGE_MAX_BYTES = 2 << 20;

export interface ExampleSource {
  dir: string;
  numExamples: number;
  featureShape: number[];
  featureDtype: 'uint8' | 'float32';
  imageShape: number[] | null;
  classes: string[];
}

export interface ExampleView {
  index: number;
  label: number;
  class: string;
  features?: number[];
  image?: string;
}

export type ExamplesOutcome =
  | { ok: true; data: ExampleView[]; nextOffset: number | null }
  /** not even one example fits a page with its features */
  | { ok: false; exampleBytes: number; pageBytes: number; values: number };

async function readRange(handle: FileHandle, out: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < out.length;) {
    const { bytesRead } = await handle.read(out, done, out.length - done, position + done);
    if (bytesRead === 0) throw new Error(`a dataset file ends before byte ${position + out.length}`);
    done += bytesRead;
  }
}

/** The preview's size: the image's own when it is small, else scaled so its longer side is PREVIEW_MAX_SIDE. */
export function previewSize(h: number, w: number): [number, number] {
  const s = Math.min(1, PREVIEW_MAX_SIDE / Math.max(h, w));
  return [Math.max(1, Math.round(h * s)), Math.max(1, Math.round(w * s))];
}

/** Nearest samples of an [h, w, c] image at [ph, pw]; float values stretched to 0..255 over the samples. */
function preview(values: Uint8Array | Float32Array, h: number, w: number, c: number): { pixels: Uint8Array; ph: number; pw: number } {
  const [ph, pw] = previewSize(h, w);
  const samples = new Float32Array(ph * pw * c);
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / ph));
    for (let x = 0; x < pw; x++) {
      const sx = Math.min(w - 1, Math.floor(((x + 0.5) * w) / pw));
      for (let k = 0; k < c; k++) samples[(y * pw + x) * c + k] = values[(sy * w + sx) * c + k]!;
    }
  }
  if (values instanceof Uint8Array) return { pixels: Uint8Array.from(samples), ph, pw };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of samples) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo || 1;
  return { pixels: Uint8Array.from(samples, (v) => Math.round(((v - lo) / span) * 255)), ph, pw };
}

/** An upper bound of one example's JSON: fixed fields, the values as text, the preview as a base64 PNG. */
function exampleBytes(d: ExampleSource, size: number, withFeatures: boolean, image: number[] | null): number {
  const longestClass = Math.min(1000, Math.max(...d.classes.map((c) => c.length)));
  // a uint8 is at most "255,"; a float32 printed as a double at most 24 characters
  const features = withFeatures ? size * (d.featureDtype === 'uint8' ? 4 : 24) : 0;
  let png = 0;
  if (image) {
    const [ph, pw] = previewSize(image[0], image[1]);
    // PNG of incompressible pixels: the raw rows plus a filter byte per row and ~100 bytes of chunks
    png = Math.ceil(((ph * pw * image[2] + ph + 200) * 4) / 3) + 40;
  }
  return 120 + longestClass * 6 + features + png;
}

export async function readExamples(d: ExampleSource, offset: number, limit: number, withFeatures: boolean): Promise<ExamplesOutcome> {
  const size = d.featureShape.reduce((a, b) => a * b, 1);
  const image = imageShapeOf(d);
  const perExample = exampleBytes(d, size, withFeatures, image);
  const available = Math.max(0, d.numExamples - offset);
  const fits = Math.floor(PAGE_MAX_BYTES / perExample);
  if (available > 0 && fits === 0) return { ok: false, exampleBytes: perExample, pageBytes: PAGE_MAX_BYTES, values: size };
  const count = Math.min(limit, available, fits);
  const nextOffset = offset + count < d.numExamples ? offset + count : null;
  if (count === 0) return { ok: true, data: [], nextOffset };

  const bytesPer = d.featureDtype === 'float32' ? 4 : 1;
  const features = await open(join(d.dir, FEATURES_FILE), 'r');
  const labelsFile = await open(join(d.dir, LABELS_FILE), 'r');
  try {
    const labelBytes = new Uint8Array(count * 4);
    await readRange(labelsFile, labelBytes, offset * 4);
    const labels = new Int32Array(labelBytes.buffer);
    const data: ExampleView[] = [];
    const bytes = new Uint8Array(size * bytesPer);
    // imported when a page shows images: sharp (libvips) costs a process about 0.2 s of CPU to load
    const sharp = image ? (await import('sharp')).default : undefined;
    for (let k = 0; k < count; k++) {
      await readRange(features, bytes, (offset + k) * size * bytesPer);
      const values = bytesPer === 4 ? new Float32Array(bytes.buffer) : bytes;
      const label = labels[k];
      const view: ExampleView = { index: offset + k, label, class: d.classes[label] ?? String(label) };
      if (withFeatures) view.features = Array.from(values);
      if (image && sharp) {
        const [h, w, c] = image as [number, number, 1 | 3];
        const { pixels, ph, pw } = preview(values, h, w, c);
        let picture = sharp(pixels, { raw: { width: pw, height: ph, channels: c } });
        if (c === 1) picture = picture.toColourspace('b-w');
        view.image = `data:image/png;base64,${(await picture.png().toBuffer()).toString('base64')}`;
      }
      data.push(view);
    }
    return { ok: true, data, nextOffset };
  } finally {
    await features.close();
    await labelsFile.close();
  }
}
