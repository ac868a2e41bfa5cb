/**
 * A page of a dataset's examples as a person wants to see them: values, label, class name and,
 * for images, a small PNG. Reads only the requested slice of the compact files.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { FEATURES_FILE, LABELS_FILE } from './dataset-files.js';
import { imageShapeOf } from './image-shape.js';

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

async function readRange(file: string, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const handle = await open(file, 'r');
  try {
    for (let done = 0; done < length; ) {
      const { bytesRead } = await handle.read(out, done, length - done, position + done);
      if (bytesRead === 0) throw new Error(`${file} ends before byte ${position + length}`);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return out;
}

/** Float images are stretched to 0..255 per picture; uint8 ones are shown as stored. */
function toPixels(values: Uint8Array | Float32Array): Uint8Array {
  if (values instanceof Uint8Array) return values;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo || 1;
  return Uint8Array.from(values, (v) => Math.round(((v - lo) / span) * 255));
}

export async function readExamples(d: ExampleSource, offset: number, limit: number, withFeatures: boolean): Promise<ExampleView[]> {
  const count = Math.max(0, Math.min(limit, d.numExamples - offset));
  if (count === 0) return [];
  const size = d.featureShape.reduce((a, b) => a * b, 1);
  const bytesPer = d.featureDtype === 'float32' ? 4 : 1;
  const featureBytes = await readRange(join(d.dir, FEATURES_FILE), offset * size * bytesPer, count * size * bytesPer);
  const labelBytes = await readRange(join(d.dir, LABELS_FILE), offset * 4, count * 4);
  const features = bytesPer === 4 ? new Float32Array(featureBytes.buffer) : featureBytes;
  const labels = new Int32Array(labelBytes.buffer);
  const image = imageShapeOf(d);
  return Promise.all(
    Array.from({ length: count }, async (_, k) => {
      const values = features.subarray(k * size, (k + 1) * size);
      const label = labels[k]!;
      const view: ExampleView = { index: offset + k, label, class: d.classes[label] ?? String(label) };
      if (withFeatures) view.features = Array.from(values);
      if (image) {
        const [height, width, channels] = image;
        let picture = sharp(toPixels(values), { raw: { width, height, channels: channels as 1 | 3 } });
        if (channels === 1) picture = picture.toColourspace('b-w');
        view.image = `data:image/png;base64,${(await picture.png().toBuffer()).toString('base64')}`;
      }
      return view;
    }),
  );
}
