/**
 * Hostile uploads: small files that declare or expand into huge datasets, deep JSON, big
 * images, the examples page of large images, more model uploads at once than may be checked,
 * and uploads that stall, trickle or whose client goes away. Each is refused with its own code before the
 * disk holds more than DATASET_MAX_BYTES, and nothing answers 5xx but the 503 of a busy model
 * check.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { PAGE_MAX_BYTES, PREVIEW_MAX_SIDE } from '../../../src/artifacts/dataset-examples.js';
import { loadConfig } from '../../../src/config.js';
import { startApi, type Api } from '../../helpers/api.js';
import { waitFor } from '../../helpers/harness.js';
import { openRequest, parseAnswer, refusedBody, responseTo, within, type RawRequest } from '../../helpers/raw-http.js';
import { idx, no5xx, png, postForm, tarball, uploadDataset, type Reply } from '../artifacts/fixtures.js';

const MAX_BYTES = 16 << 20;
let h: Api;

before(async () => {
  h = await startApi({
    DATASET_MAX_BYTES: String(MAX_BYTES),
    IMAGE_MAX_PIXELS: String(256 * 256),
    MODEL_CHECK_CONCURRENCY: '1',
    // an hour and no minimum rate: a held upload ends only when its client goes away (the stall and
    // rate bounds are tested on services of their own)
    UPLOAD_IDLE_TIMEOUT_SECONDS: '3600',
    UPLOAD_MIN_BYTES_PER_SECOND: '0',
    // short, so that the test of UPLOAD_MIN_BYTES_PER_SECOND=0 runs past it
    UPLOAD_RATE_GRACE_SECONDS: '1',
  });
});
after(() => h?.stop());

/** Nothing of dataset `id` is on disk: neither its directory nor a half-written temp one, nor its raw upload. */
function assertNothingOnDisk(id: string) {
  const root = join(h.dataDir, 'artifacts');
  for (const kind of ['datasets', 'uploads']) {
    const dir = join(root, kind);
    const left = existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith(id)) : [];
    assert.deepEqual(left, [], `${kind}/ still holds ${left.join(', ')}`);
  }
}

function assertFailed(d: any, code: string) {
  assert.equal(d.status, 'failed', JSON.stringify(d));
  assert.equal(d.error.code, code, JSON.stringify(d.error));
}

describe('conversions are bounded by DATASET_MAX_BYTES', () => {
  test('an IDX gzip whose header declares 100,000 images of 100x100 is refused from its header, nothing written', async () => {
    // the attack: about a megabyte of gzip that would convert to 955 MB
    const header = idx(0x08, [100_000, 100, 100], new Uint8Array(0));
    const images = gzipSync(Buffer.concat([header, Buffer.alloc(50 << 20)]));
    const labels = gzipSync(Buffer.concat([idx(0x08, [100_000], new Uint8Array(0)), Buffer.alloc(100_000)]));
    assert.ok(images.length < 1 << 20);
    const d = await uploadDataset(h, { name: 'bomb', format: 'idx' }, [
      { field: 'images', content: images },
      { field: 'labels', content: labels },
    ]);
    assertFailed(d, 'dataset_too_large');
    assert.equal(d.error.location.field, 'images');
    assert.equal(d.error.location.expected, MAX_BYTES);
    assert.equal(d.error.location.found, 100_000 * (100 * 100 + 4));
    assert.match(d.error.message, /declares 100000 items of \[100, 100\] ubyte.*DATASET_MAX_BYTES/);
    assertNothingOnDisk(d.id);
  });

  test('a tar.gz of 1x1 PNGs is refused an imageSize over IMAGE_MAX_PIXELS, and stops at the byte limit when upscaled within it', async () => {
    const dot = await png(new Uint8Array([255]), 1, 1);
    const entries: Array<[string, Uint8Array]> = [];
    for (let i = 0; i < 200; i++) entries.push([`${i % 2 ? 'a' : 'b'}/${i}.png`, dot]);
    const archive = await tarball(entries, true);
    assert.ok(archive.length < 4096, `${archive.length} bytes`);

    const big = no5xx(
      await postForm(h, '/v1/datasets', { name: 'x', format: 'images', imageSize: '[2048, 2048]' }, [
        { field: 'file', content: archive, filename: 'a.tar.gz' },
      ]),
    );
    assert.equal(big.status, 400);
    assert.equal(big.body.errors[0].pointer, '/imageSize');
    assert.match(big.body.errors[0].detail, /IMAGE_MAX_PIXELS/);

    // 200 x 256 x 256 x 3 bytes would be 39 MB: it stops before passing 16 MiB
    const d = await uploadDataset(h, { name: 'x', format: 'images', imageSize: '[256, 256]', channels: '3' }, [
      { field: 'file', content: archive, filename: 'a.tar.gz' },
    ]);
    assertFailed(d, 'dataset_too_large');
    const exampleBytes = 256 * 256 * 3 + 4;
    assert.equal(d.error.location.index, Math.floor(MAX_BYTES / exampleBytes), 'refused at the first example over the limit');
    assertNothingOnDisk(d.id);
  });

  test('an image larger than IMAGE_MAX_PIXELS without imageSize is image_too_large, naming the entry', async () => {
    const wide = await png(new Uint8Array(300 * 300), 300, 300);
    const d = await uploadDataset(h, { name: 'x', format: 'images' }, [
      {
        field: 'file',
        content: await tarball([
          ['a/1.png', wide],
          ['b/1.png', wide],
        ]),
        filename: 'a.tar',
      },
    ]);
    assertFailed(d, 'image_too_large');
    assert.equal(d.error.location.entry, 'a/1.png');
    assert.match(d.error.message, /give imageSize/);
  });

  test('CSV rows are counted as they arrive: a file that grows past the limit stops there', async () => {
    // 1000 features of float32 per row: 4004 bytes each; 16 MiB holds 4190 rows
    const header = `${Array.from({ length: 1000 }, (_, i) => `f${i}`).join(',')},label\n`;
    const row = `${'0.5,'.repeat(1000)}a\n`;
    const d = await uploadDataset(h, { name: 'x', format: 'csv' }, [{ field: 'file', content: header + row.repeat(5000), filename: 'a.csv' }]);
    assertFailed(d, 'dataset_too_large');
    assert.equal(d.error.location.index, Math.floor(MAX_BYTES / 4004));
    assertNothingOnDisk(d.id);
  });
});

describe('deep JSON', () => {
  test('a JSONL line nested 20,000 deep is too_deep at its line and column, at once', async () => {
    const deep = `{"x": ${'['.repeat(20_000)}1${']'.repeat(20_000)}, "y": 0}`;
    const d = await uploadDataset(h, { name: 'x', format: 'jsonl' }, [{ field: 'file', content: `{"x": [1], "y": 1}\n${deep}\n${deep}\n` }]);
    assertFailed(d, 'too_deep');
    assert.equal(d.error.location.line, 2);
    assert.equal(d.error.location.column, 7 + 31, 'the bracket one level past the cap of 32 (the object is the first)');
  });

  test('100,000 unclosed brackets are too_deep, not internal', async () => {
    const d = await uploadDataset(h, { name: 'x', format: 'jsonl' }, [{ field: 'file', content: '['.repeat(100_000) }]);
    assertFailed(d, 'too_deep');
    assert.equal(d.error.location.line, 1);
  });

  test('a modelJson of brackets is a 400 too_deep pointing at /modelJson', async () => {
    const cases: Array<[string, number]> = [
      ['['.repeat(100_000), 101],
      [`{"modelTopology": ${'['.repeat(5000)}${']'.repeat(5000)}}`, 18 + 100],
    ];
    for (const [text, column] of cases) {
      const res = no5xx(await postForm(h, '/v1/models', { modelJson: text }, [{ field: 'weights', content: new Uint8Array(4), filename: 'w.bin' }]));
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.type, 'urn:tfjs-adapt:problem:too_deep');
      assert.equal(res.body.errors[0].pointer, '/modelJson');
      assert.match(res.body.errors[0].detail, new RegExp(`deeper than 100 levels at line 1, column ${column};`));
    }
  });
});

describe('examples of large images', () => {
  let big: any;
  before(async () => {
    // 12 colour images of 200x200: 120 KB each
    const n = 12;
    const pixels = Uint8Array.from({ length: n * 200 * 200 * 3 }, (_, i) => i % 251);
    big = await uploadDataset(h, { name: 'big', format: 'idx', layout: 'image' }, [
      { field: 'images', content: idx(0x08, [n, 200, 200, 3], pixels) },
      {
        field: 'labels',
        content: idx(
          0x08,
          [n],
          Uint8Array.from({ length: n }, (_, i) => i % 2),
        ),
      },
    ]);
    assert.equal(big.status, 'ready', JSON.stringify(big.error));
  });

  test('images come as previews at most PREVIEW_MAX_SIDE a side, sampled from the stored pixels', async () => {
    const res = await h.request('GET', `/v1/datasets/${big.id}/examples?limit=10&features=false`);
    assert.equal(res.status, 200);
    assert.equal(res.body.data.length, 10);
    assert.equal(res.body.nextOffset, 10);
    for (const ex of res.body.data) {
      const meta = await sharp(Buffer.from(ex.image.split(',')[1], 'base64')).metadata();
      assert.equal(meta.width, PREVIEW_MAX_SIDE);
      assert.equal(meta.height, PREVIEW_MAX_SIDE);
      assert.equal(meta.channels, 3);
    }
  });

  test('with features a page holds only what fits its byte bound, and says where to go on', async () => {
    const res = await h.request('GET', `/v1/datasets/${big.id}/examples?limit=100`);
    assert.equal(res.status, 200);
    const text = JSON.stringify(res.body);
    assert.ok(text.length <= PAGE_MAX_BYTES, `${text.length} bytes`);
    // 120,000 uint8 values of at most 4 characters each: 4 examples fit 2 MiB
    assert.equal(res.body.data.length, 4);
    assert.equal(res.body.nextOffset, 4);
    assert.equal(res.body.data[3].features.length, 200 * 200 * 3);
    const last = await h.request('GET', `/v1/datasets/${big.id}/examples?offset=8&limit=100`);
    assert.deepEqual(
      last.body.data.map((e: any) => e.index),
      [8, 9, 10, 11],
    );
    assert.equal(last.body.nextOffset, null);
  });

  test("when one example's values do not fit a page, 400 pointing at features", async () => {
    const huge = await uploadDataset(h, { name: 'huge', format: 'idx', layout: 'image' }, [
      { field: 'images', content: gzipSync(idx(0x08, [2, 1000, 1000], new Uint8Array(2 * 1000 * 1000))) },
      { field: 'labels', content: idx(0x08, [2], new Uint8Array([0, 1])) },
    ]);
    assert.equal(huge.status, 'ready', JSON.stringify(huge.error));
    const res = await h.request('GET', `/v1/datasets/${huge.id}/examples?limit=1`);
    assert.equal(res.status, 400);
    assert.equal(res.body.errors[0].pointer, '/features');
    const previews = await h.request('GET', `/v1/datasets/${huge.id}/examples?limit=2&features=false`);
    assert.equal(previews.status, 200);
    assert.equal(previews.body.data.length, 2);
  });
});

const BOUNDARY = 'held';

/** A whole text part of a multipart body. */
const fieldPart = (name: string, value: string) => `--${BOUNDARY}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;

/** The start of a file part: its headers and `bytes` of its content, not its end. */
const filePart = (bytes: number) =>
  `--${BOUNDARY}\r\ncontent-disposition: form-data; name="weights"; filename="w.bin"\r\ncontent-type: application/octet-stream\r\n\r\n${'x'.repeat(bytes)}`;

const small = (api: Api) => postForm(api, '/v1/models', { modelJson: '[' }, [{ field: 'weights', content: new Uint8Array(4), filename: 'w.bin' }]);
/**
 * An upload (openUpload) that holds the one model check slot, seen as a small upload's 503 beside
 * it. Opened again when the small upload took the slot first and the holder was the 503.
 */
async function holdSlot(api: Api, start: string): Promise<{ holding: RawRequest; busy: Reply }> {
  let holding = openUpload(api, '/v1/models', start);
  try {
    const busy = await waitFor('a 503 while the slot is held', async () => {
      if (holding.sent() !== '') {
        holding.socket.destroy();
        holding = openUpload(api, '/v1/models', start);
        return undefined;
      }
      const res = no5xxBut503(await small(api));
      return res.status === 503 ? res : undefined;
    });
    return { holding, busy };
  } catch (err) {
    holding.socket.destroy();
    throw err;
  }
}

const slotBack = (api: Api) =>
  waitFor('the slot to come back', async () => {
    const res = no5xxBut503(await small(api));
    return res.status === 503 ? undefined : res;
  });

describe('model checks', () => {
  test(
    'beyond MODEL_CHECK_CONCURRENCY uploads in flight, a model upload is a 503 with Retry-After before its body is read; the slot comes back',
    { timeout: 180_000 },
    async () => {
      const { holding, busy } = await holdSlot(h, filePart(1));
      try {
        assert.equal(busy.body.type, 'urn:tfjs-adapt:problem:model_checks_busy');
        assert.equal(busy.headers.get('retry-after'), '5');
        assert.match(busy.body.detail, /MODEL_CHECK_CONCURRENCY/);
      } finally {
        holding.socket.destroy();
      }
      assert.equal((await slotBack(h)).status, 400, 'an ordinary answer again');
    },
  );

  test(
    'an upload whose client goes away with its headers, before the route reads its form, is answered and gives its slot back',
    { timeout: 180_000 },
    async () => {
      // the close arrives while the route still awaits (rate limit, quota) and the form's parser does not listen yet
      const answered = responseTo(h, 'gone-at-once');
      const { hostname, port } = new URL(h.url);
      connect(Number(port), hostname)
        .on('error', () => undefined)
        .end(
          `POST /v1/models HTTP/1.1\r\nhost: ${hostname}\r\nx-test: gone-at-once\r\ncontent-type: multipart/form-data; boundary=${BOUNDARY}\r\ncontent-length: ${1 << 20}\r\n\r\n`,
        );
      const res = await within('the request to reach the server', answered);
      await waitFor('the server to end its answer to the upload', async () => res.writableEnded);
      assert.equal((await slotBack(h)).status, 400, 'an ordinary answer');
      await waitFor('the upload directory to be removed', async () => uploadDirs('mdl_').length === 0);
    },
  );

  // UPLOAD_IDLE_TIMEOUT_SECONDS is an hour here: only the closed connection can give the slot back in time.
  // The abort waits until the form is being read (its upload directory exists) and, inside a file, until
  // bytes of it are on disk; the two tests above abort wherever the route is, mostly before it reads the form
  const aborts: Array<[string, string, (id: string) => boolean]> = [
    ['after its headers, before the first part', '', () => true],
    ['inside a file part, once its first bytes are on disk', filePart(64 << 10), (id) => partBytes(id) > 0],
    ['between parts', `${fieldPart('name', 'held')}--${BOUNDARY}\r\n`, () => true],
  ];
  for (const [when, start, arrived] of aborts) {
    test(`an upload whose client goes away ${when} gives its slot and its upload directory back`, { timeout: 180_000 }, async () => {
      const { holding } = await holdSlot(h, start);
      try {
        await waitFor('the upload to arrive', async () => {
          const [id] = uploadDirs('mdl_');
          return id !== undefined && arrived(id);
        });
      } finally {
        holding.socket.destroy();
      }
      assert.equal((await slotBack(h)).status, 400, 'an ordinary answer again');
      await waitFor('the upload directory to be removed', async () => uploadDirs('mdl_').length === 0);
    });
  }
});

describe('stalled uploads', () => {
  let slow: Api;
  before(async () => {
    slow = await startApi({ MODEL_CHECK_CONCURRENCY: '1', UPLOAD_IDLE_TIMEOUT_SECONDS: '1' });
  });
  after(() => slow?.stop());

  const cases: Array<[string, '/v1/models' | '/v1/datasets', string]> = [
    ['a model upload that stops inside a file part', '/v1/models', filePart(1000)],
    ['a dataset upload that sends nothing after its headers', '/v1/datasets', ''],
  ];
  for (const [what, path, start] of cases) {
    test(
      `${what} is a 408 upload_stalled after UPLOAD_IDLE_TIMEOUT_SECONDS, its connection closed and what it held released`,
      { timeout: 180_000 },
      async () => {
        const { socket, closed } = openUpload(slow, path, start);
        try {
          const res = refusedBody(await within('the answer and the closed connection', closed), 'upload_stalled');
          assert.match(res.body.detail, /no bytes of the request body arrived for 1 s.*UPLOAD_IDLE_TIMEOUT_SECONDS/);
        } finally {
          socket.destroy();
        }
        if (path === '/v1/models') assert.equal((await slotBack(slow)).status, 400, 'the model check slot is free: an ordinary answer');
        await waitFor('the upload directory to be removed', async () => uploadDirs(path === '/v1/models' ? 'mdl_' : 'ds_', slow).length === 0);
      },
    );
  }

  test('UPLOAD_IDLE_TIMEOUT_SECONDS is a whole number of seconds from 1 to 3600, 30 unless set', () => {
    assert.equal(loadConfig({}).uploadIdleTimeoutSeconds, 30);
    assert.equal(loadConfig({ UPLOAD_IDLE_TIMEOUT_SECONDS: '5' }).uploadIdleTimeoutSeconds, 5);
    for (const bad of ['0', '1.5', '3601', 'soon']) {
      assert.throws(
        () => loadConfig({ UPLOAD_IDLE_TIMEOUT_SECONDS: bad }),
        new RegExp(`UPLOAD_IDLE_TIMEOUT_SECONDS="${bad}" is not valid: expected an integer from 1 to 3600`),
      );
    }
  });
});

describe('trickling uploads', () => {
  let trickle: Api;
  before(async () => {
    // a rate that a few bytes every 300 ms cannot reach, judged after 1 s; the idle timeout stays at
    // its 30 s, which a byte every 300 ms never reaches
    trickle = await startApi({ MODEL_CHECK_CONCURRENCY: '1', UPLOAD_MIN_BYTES_PER_SECOND: '4096', UPLOAD_RATE_GRACE_SECONDS: '1' });
  });
  after(() => trickle?.stop());

  /** Writes `bytes` bytes of a file's content every `ms` until the connection closes or `count` writes were made. */
  function drip(upload: RawRequest, bytes: number, ms: number, count = Infinity): Promise<void> {
    return new Promise((resolve) => {
      let made = 0;
      const timer = setInterval(() => {
        if (upload.socket.destroyed || made === count) {
          clearInterval(timer);
          return resolve();
        }
        upload.socket.write('x'.repeat(bytes));
        made++;
      }, ms);
    });
  }

  const cases: Array<[string, '/v1/models' | '/v1/datasets']> = [
    ['a model upload', '/v1/models'],
    ['a dataset upload', '/v1/datasets'],
  ];
  for (const [what, path] of cases) {
    test(
      `${what} that trickles 4 bytes every 300 ms is a 408 upload_too_slow once it has run UPLOAD_RATE_GRACE_SECONDS, its connection closed and what it held released`,
      { timeout: 180_000 },
      async () => {
        const upload = openUpload(trickle, path, filePart(0));
        const dripping = drip(upload, 4, 300);
        try {
          const res = refusedBody(await within('the answer and the closed connection', upload.closed), 'upload_too_slow');
          assert.match(
            res.body.detail,
            /bytes\/s on average; after its first 1 s \(UPLOAD_RATE_GRACE_SECONDS\).* at least 4096 bytes\/s \(UPLOAD_MIN_BYTES_PER_SECOND\)/,
          );
        } finally {
          upload.socket.destroy();
          await dripping;
        }
        if (path === '/v1/models') assert.equal((await slotBack(trickle)).status, 400, 'the model check slot is free: an ordinary answer');
        await waitFor('the upload directory to be removed', async () => uploadDirs(path === '/v1/models' ? 'mdl_' : 'ds_', trickle).length === 0);
      },
    );
  }

  /**
   * A model upload (model.json `[`, so an ordinary 400 once read) whose weights arrive as `chunks`
   * writes of `bytes` every 300 ms, then its end; the connection closes after the answer.
   */
  async function paced(api: Api, bytes: number, chunks: number) {
    const head = `${fieldPart('modelJson', '[')}${filePart(0)}`;
    const tail = `\r\n--${BOUNDARY}--\r\n`;
    const upload = openRequest(api.url, {
      path: '/v1/models',
      headers: {
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        'content-length': String(head.length + bytes * chunks + tail.length),
        connection: 'close',
      },
      start: head,
    });
    try {
      await drip(upload, bytes, 300, chunks);
      upload.socket.write(tail);
      return parseAnswer(await within('the answer and the closed connection', upload.closed));
    } finally {
      upload.socket.destroy();
    }
  }

  test('an upload that keeps UPLOAD_MIN_BYTES_PER_SECOND is read to its end, however long past the grace period', { timeout: 180_000 }, async () => {
    // 16 KiB every 300 ms, some 13 times the minimum, for about 3 s
    const res = await paced(trickle, 16 << 10, 10);
    assert.equal(res.status, 400, res.text);
    assert.notEqual(res.body.type, 'urn:tfjs-adapt:problem:upload_too_slow');
  });

  test('UPLOAD_MIN_BYTES_PER_SECOND=0 refuses no rate: a trickle past the grace period is read to its end', { timeout: 180_000 }, async () => {
    // h: no minimum, a grace of 1 s; 4 bytes every 300 ms for about 3 s
    const res = await paced(h, 4, 10);
    assert.equal(res.status, 400, res.text);
    assert.notEqual(res.body.type, 'urn:tfjs-adapt:problem:upload_too_slow');
  });

  test('UPLOAD_MIN_BYTES_PER_SECOND is a whole number from 0 (none) to 1 GiB, 1024 unless set; UPLOAD_RATE_GRACE_SECONDS from 1 to 3600, 30 unless set', () => {
    assert.equal(loadConfig({}).uploadMinBytesPerSecond, 1024);
    assert.equal(loadConfig({ UPLOAD_MIN_BYTES_PER_SECOND: '0' }).uploadMinBytesPerSecond, 0);
    assert.equal(loadConfig({}).uploadRateGraceSeconds, 30);
    assert.equal(loadConfig({ UPLOAD_RATE_GRACE_SECONDS: '5' }).uploadRateGraceSeconds, 5);
    for (const bad of ['-1', '1.5', String(1024 ** 3 + 1), 'fast']) {
      assert.throws(
        () => loadConfig({ UPLOAD_MIN_BYTES_PER_SECOND: bad }),
        new RegExp(`UPLOAD_MIN_BYTES_PER_SECOND="${bad}" is not valid: expected an integer from 0 to ${1024 ** 3}`),
      );
    }
    for (const bad of ['0', '1.5', '3601', 'soon']) {
      assert.throws(
        () => loadConfig({ UPLOAD_RATE_GRACE_SECONDS: bad }),
        new RegExp(`UPLOAD_RATE_GRACE_SECONDS="${bad}" is not valid: expected an integer from 1 to 3600`),
      );
    }
  });
});

/**
 * A multipart upload on a connection of its own: its headers (declaring a body of 1 MiB) and
 * `start`, then nothing until the test writes more or destroys the socket.
 */
const openUpload = (api: Api, path: string, start: string) =>
  openRequest(api.url, { path, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(1 << 20) }, start });

/** Upload directories (artifacts/uploads) whose id starts with `prefix`. */
function uploadDirs(prefix: string, api: Api = h): string[] {
  const dir = join(api.dataDir, 'artifacts', 'uploads');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith(prefix)) : [];
}

/** Bytes of the first file part of upload `id` on disk so far. */
function partBytes(id: string): number {
  const file = join(h.dataDir, 'artifacts', 'uploads', id, 'part-0');
  return existsSync(file) ? statSync(file).size : 0;
}

function no5xxBut503(res: Awaited<ReturnType<typeof postForm>>) {
  if (res.status >= 500 && res.status !== 503) throw new Error(`server error ${res.status}: ${JSON.stringify(res.body)}`);
  return res;
}
