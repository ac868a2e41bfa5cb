import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { startApi, type Api } from '../../helpers/api.js';
import { waitFor } from '../../helpers/harness.js';
import { CLASSES, pattern, SIDE, storeTrainedModel } from '../../helpers/trained-model.js';

let api: Api;
let model: string;

before(async () => {
  api = await startApi({ PREDICT_MAX_EXAMPLES: '8', PREDICT_MAX_BODY_BYTES: '65536', PREDICT_TIMEOUT_MS: '5000' });
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
