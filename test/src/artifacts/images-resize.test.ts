import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ingestImages } from '../../../src/artifacts/ingest/images.js';
import type { ImagesJob } from '../../../src/artifacts/ingest/job.js';
import { png, tarball } from './fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'images-resize-'));
after(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;

/** A 2x4 greyscale image whose columns are 40, 80, 160, 240, in both classes; converted with `options`. */
async function convert(options: Pick<ImagesJob, 'resize' | 'imageSize' | 'channels'>): Promise<{ pixels: number[]; imageShape: number[] | null }> {
  const image = await png(Uint8Array.from([40, 80, 160, 240, 40, 80, 160, 240]), 2, 4);
  const file = join(root, `${++runs}.tar`);
  writeFileSync(
    file,
    await tarball([
      ['a/1.png', image],
      ['b/1.png', image],
    ]),
  );
  const outDir = join(root, `out-${runs}`);
  mkdirSync(outDir);
  const result = await ingestImages({
    kind: 'images',
    file,
    outDir,
    layout: 'flat',
    limit: { datasetMaxBytes: 1 << 20, quota: null, imageMaxPixels: 1 << 20 },
    ...options,
  });
  const features = readFileSync(join(outDir, 'features.bin'));
  return { pixels: Array.from(features.subarray(0, features.length / 2)), imageShape: result.imageShape };
}

test('cover scales an image to fill the size and crops the overflow about its centre', async () => {
  const { pixels, imageShape } = await convert({ resize: 'cover', imageSize: [2, 2], channels: 1 });
  assert.deepEqual(imageShape, [2, 2, 1]);
  assert.deepEqual(pixels, [80, 160, 80, 160]);
});

test('contain scales an image to fit the size and pads the rest with black, about its centre', async () => {
  const { pixels } = await convert({ resize: 'contain', imageSize: [4, 4], channels: 1 });
  assert.deepEqual(pixels, [0, 0, 0, 0, 40, 80, 160, 240, 40, 80, 160, 240, 0, 0, 0, 0]);
});

test('stretch (the default) squeezes the whole image into the size, ignoring its aspect ratio', async () => {
  const { pixels } = await convert({ resize: 'stretch', imageSize: [2, 2], channels: 1 });
  // each output column averages two source columns: all four contribute, left dark, right light
  assert.equal(pixels.length, 4);
  assert.ok(pixels[0] > 40 && pixels[0] < 120 && pixels[1] > 120 && pixels[1] < 240, `stretched row ${pixels.slice(0, 2)}`);
  assert.deepEqual(pixels.slice(0, 2), pixels.slice(2));
});

test('greyscale images become three equal channels when channels is 3', async () => {
  const { pixels, imageShape } = await convert({ resize: 'cover', imageSize: [2, 2], channels: 3 });
  assert.deepEqual(imageShape, [2, 2, 3]);
  assert.deepEqual(pixels, [80, 80, 80, 160, 160, 160, 80, 80, 80, 160, 160, 160]);
});
