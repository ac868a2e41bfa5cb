import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { startApi, type Api } from '../../helpers/api.js';
import { waitFor } from '../../helpers/harness.js';
import { openRequest, parseAnswer, refusedBody, responseTo, within } from '../../helpers/raw-http.js';
import { CLASSES, pattern, SIDE, storeTrainedModel } from '../../helpers/trained-model.js';

let api: Api;
let model: string;

before(async () => {
  api = await startApi({
    PREDICT_MAX_EXAMPLES: '8',
    PREDICT_MAX_BODY_BYTES: '65536',
    PREDICT_TIMEOUT_MS: '5000',
    // short, for the stalled images below; the other forms are sent whole at once
    UPLOAD_IDLE_TIMEOUT_SECONDS: '2',
    // never reached: every request is counted in Redis, where the closed connection below waits
    RATE_LIMIT_PER_MINUTE: '1000000',
  });
  model = await storeTrainedModel(api.deps);
});
after(() => api?.stop());

const predict = (body: unknown, id = model) => api.request('POST', `/v1/models/${id}/predict`, body);

async function postImages(images: Uint8Array[], fields: Record<string, string> = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  images.forEach((bytes, i) => form.append('image', new Blob([bytes as BlobPart]), `image-${i}.png`));
  const res = await fetch(`${api.url}/v1/models/${model}/predict`, { method: 'POST', body: form });
  return { status: res.status, body: await res.json() };
}

/** A PNG of `c`'s pattern, 4x larger than the model's input, RGB: the route must shrink and grey it. */
const png = (c: number) =>
  sharp(Buffer.from(pattern(c, 3)), { raw: { width: SIDE, height: SIDE, channels: 1 } })
    .resize(SIDE * 4, SIDE * 4, { kernel: 'nearest' })
    .toColourspace('srgb')
    .png()
    .toBuffer();

test('JSON examples: one prediction per example in order, classes by falling probability summing to 1', async () => {
  const res = await predict({ examples: [pattern(2, 11), pattern(0, 12), pattern(1, 13)] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.predictions.length, 3);
  assert.deepEqual(
    res.body.predictions.map((p: any) => p.classes[0].class),
    ['bottom', 'top-left', 'top-right'],
  );
  for (const p of res.body.predictions) {
    assert.deepEqual([...p.classes.map((c: any) => c.class)].sort(), [...CLASSES].sort());
    const probabilities = p.classes.map((c: any) => c.probability);
    assert.deepEqual(
      probabilities,
      [...probabilities].sort((a, b) => b - a),
    );
    assert.ok(Math.abs(probabilities.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-5);
  }
});

test('nested examples in the image layout answer as their flat twins; topK keeps the most probable', async () => {
  const flat = pattern(1, 4);
  const nested = Array.from({ length: SIDE }, (_, y) => flat.slice(y * SIDE, (y + 1) * SIDE));
  // the model takes [64]: a nested 8x8 is refused, its flat form taken
  const wrong = await predict({ examples: [nested] });
  assert.equal(wrong.status, 400);
  const res = await predict({ examples: [flat], topK: 1 });
  assert.equal(res.status, 200);
  assert.equal(res.body.predictions[0].classes.length, 1);
  assert.equal(res.body.predictions[0].classes[0].class, 'top-right');
  const all = await predict({ examples: [flat], topK: 99 });
  assert.equal(all.body.predictions[0].classes.length, 3);
  assert.equal(all.body.predictions[0].classes[0].probability, res.body.predictions[0].classes[0].probability);
});

test('multipart images are resized, made greyscale and preprocessed as the model was trained', async () => {
  const res = await postImages([await png(0), await png(2), await png(1)], { topK: '2' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(
    res.body.predictions.map((p: any) => p.classes[0].class),
    ['top-left', 'bottom', 'top-right'],
  );
  assert.ok(res.body.predictions.every((p: any) => p.classes.length === 2));
});

test('bounds: wrong shape names the example and the shape, too many examples, too large, bad images, bad topK', async () => {
  const examples = [pattern(0), pattern(1), pattern(2), pattern(0).slice(1)];
  const shape = await predict({ examples });
  assert.equal(shape.status, 400);
  assert.equal(shape.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  assert.equal(shape.body.errors[0].pointer, '/examples/3');
  assert.match(shape.body.errors[0].detail, /has 63 entries; expected 64 numbers/);

  const notNumber = await predict({ examples: [pattern(0).map((v, i) => (i === 5 ? 'x' : v))] });
  assert.equal(notNumber.status, 400);
  assert.equal(notNumber.body.errors[0].pointer, '/examples/0/5');

  const many = await predict({ examples: Array.from({ length: 9 }, () => pattern(0)) });
  assert.equal(many.status, 400);
  assert.equal(many.body.type, 'urn:tfjs-adapt:problem:too_many_examples');
  assert.equal(many.body.errors[0].pointer, '/examples');

  const big = await predict({ examples: [pattern(0)], padding: 'x'.repeat(70_000) });
  assert.equal(big.status, 413);

  for (const body of [{ examples: [] }, { examples: [pattern(0)], topK: 0 }, { examples: [pattern(0)], extra: 1 }]) {
    assert.equal((await predict(body)).status, 400, JSON.stringify(body).slice(0, 60));
  }

  const broken = await postImages([await png(0), new TextEncoder().encode('not an image')]);
  assert.equal(broken.status, 400);
  assert.equal(broken.body.errors[0].pointer, '/image/1');
  const tooMany = await postImages(await Promise.all(Array.from({ length: 9 }, () => png(0))));
  assert.equal(tooMany.status, 400);
  assert.equal(tooMany.body.type, 'urn:tfjs-adapt:problem:too_many_examples');
  const tooBig = await postImages([new Uint8Array(70_000)]);
  assert.equal(tooBig.status, 413);
});

test("another tenant's model is not found, and a missing one neither", async () => {
  const theirs = await storeTrainedModel(api.deps, 'someone-else');
  for (const id of [theirs, 'mdl_nope']) {
    const res = await predict({ examples: [pattern(0)] }, id);
    assert.equal(res.status, 404);
    assert.equal(res.body.errors[0].pointer, '/id');
  }
});

test('a child that crashes mid-request answers 503 and is replaced; one past its time too', async () => {
  assert.equal((await predict({ examples: [pattern(0)] })).status, 200);
  const [before] = api.app.predictions.stats();
  const pid = before.pid!;
  process.kill(pid, 'SIGSTOP');
  const pending = predict({ examples: [pattern(0)] });
  await waitFor('the request to reach the stopped child', async () => (api.app.predictions.stats()[0].inFlight === 1 ? true : undefined));
  process.kill(pid, 'SIGKILL');
  const crashed = await pending;
  assert.equal(crashed.status, 503);
  assert.equal(crashed.body.type, 'urn:tfjs-adapt:problem:prediction_failed');
  assert.ok(crashed.headers.get('retry-after'));

  const again = await predict({ examples: [pattern(1)] });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.body.predictions[0].classes[0].class, 'top-right');
  const replacement = api.app.predictions.stats()[0].pid!;
  assert.notEqual(replacement, pid);

  // a child that never answers is given up after PREDICT_TIMEOUT_MS and replaced
  process.kill(replacement, 'SIGSTOP');
  const timedOut = await predict({ examples: [pattern(0)] });
  assert.equal(timedOut.status, 503);
  assert.equal(timedOut.body.type, 'urn:tfjs-adapt:problem:prediction_timeout');
  const recovered = await predict({ examples: [pattern(2)] });
  assert.equal(recovered.status, 200, JSON.stringify(recovered.body));
  assert.equal(recovered.body.predictions[0].classes[0].class, 'bottom');
});

const BOUNDARY = 'held';
/** The start of an `image` part: its headers and `content`, not its end. */
const imagePart = (content: string) =>
  `--${BOUNDARY}\r\ncontent-disposition: form-data; name="image"; filename="held.png"\r\ncontent-type: image/png\r\n\r\n${content}`;

/** Whether `fn` left an unhandled rejection behind, which would end the API's process (no test runner catches it there). */
async function unhandledRejections(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const record = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', record);
  try {
    await fn();
    // a rejection is reported once the microtasks after it ran
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    process.off('unhandledRejection', record);
  }
  return seen;
}

test('multipart images whose client goes away before the route reads them: the request is handled to its end, the next one answered', async () => {
  // The close must land while the route still awaits, before its form's parser listens for it (the
  // parser then waits for ever). Here the request waits for its rate-limit count in a Redis stopped
  // for the moment, as behind a slow Redis or a PostgreSQL store; with PGlite's quick answers a
  // client's close after the headers mostly lands once the parser listens
  const pid = Number(/process_id:(\d+)/.exec(await api.deps.redis.info('server'))?.[1]);
  assert.ok(pid > 0, 'the Redis server names its process');
  const handled = responseTo(api, 'gone-early');
  process.kill(pid, 'SIGSTOP');
  let res: ServerResponse;
  try {
    const { hostname, port } = new URL(api.url);
    connect(Number(port), hostname)
      .on('error', () => undefined)
      .end(
        `POST /v1/models/${model}/predict HTTP/1.1\r\nhost: ${hostname}\r\nx-test: gone-early\r\n` +
          `content-type: multipart/form-data; boundary=${BOUNDARY}\r\ncontent-length: 1000\r\n\r\n`,
      );
    res = await within('the request to reach the server', handled);
    await waitFor('the server to see the connection closed', async () => res.req.destroyed);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await waitFor('the server to end its handling of the request', async () => res.writableEnded);
  assert.equal((await predict({ examples: [pattern(0)] })).status, 200);
});

test('a broken image ahead of parts still to come is a 400 naming it, and no unhandled rejection', async () => {
  const form = `${imagePart('not an image')}\r\n${imagePart('also not')}\r\n--${BOUNDARY}--\r\n`;
  // the second part's bytes come later: the first one's decoding fails while the route waits for them
  const cut = form.indexOf('also not');
  let answer = '';
  const left = await unhandledRejections(async () => {
    const req = openRequest(api.url, {
      path: `/v1/models/${model}/predict`,
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(form.length), connection: 'close' },
      start: form.slice(0, cut),
    });
    setTimeout(() => req.socket.write(form.slice(cut)), 500);
    answer = await within('the answer', req.closed);
  });
  assert.deepEqual(left, []);
  const res = parseAnswer(answer);
  assert.equal(res.status, 400, res.text);
  assert.equal(res.body.errors[0].pointer, '/image/0');
});

// the second: a broken image ahead of the stall, whose decoding fails while the route waits for the next part
const stalls: Array<[string, string]> = [
  ['inside an image part', imagePart('PNG')],
  ['after a broken image', `${imagePart('not an image')}\r\n${imagePart('PNG')}`],
];
for (const [where, start] of stalls) {
  test(`multipart images that stall ${where} are a 408 upload_stalled after UPLOAD_IDLE_TIMEOUT_SECONDS, the connection closed; the next request is answered`, async () => {
    let answer = '';
    const left = await unhandledRejections(async () => {
      const held = openRequest(api.url, {
        path: `/v1/models/${model}/predict`,
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': '1000' },
        start,
      });
      try {
        answer = await within('the answer and the closed connection', held.closed);
      } finally {
        held.socket.destroy();
      }
    });
    assert.deepEqual(left.map(String), [], 'no unhandled rejection');
    const res = refusedBody(answer, 'upload_stalled');
    assert.match(res.body.detail, /no bytes of the request body arrived for 2 s.*UPLOAD_IDLE_TIMEOUT_SECONDS/);
    assert.equal((await predict({ examples: [pattern(0)] })).status, 200);
  });
}
