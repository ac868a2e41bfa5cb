import { mkdir, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';

/**
 * The compact dataset form the training child reads without parsing: `features.bin`
 * (raw uint8 or float32, example after example) and `labels.bin` (int32, little-endian).
 */
export const FEATURES_FILE = 'features.bin';
export const LABELS_FILE = 'labels.bin';

/** Writes `features.bin` and `labels.bin` into `dir` (created if missing). */
export async function writeDatasetFiles(dir: string, features: Uint8Array | Float32Array, labels: Int32Array): Promise<void> {
  // the files are the typed arrays' bytes, and readers take them as little-endian
  if (endianness() !== 'LE') throw new Error('datasets can only be written on a little-endian host');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, FEATURES_FILE), new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
  await writeFile(join(dir, LABELS_FILE), new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength));
}

export function classCounts(labels: Int32Array, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const y of labels) counts[y]++;
  return counts;
}
