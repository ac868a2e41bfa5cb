/**
 * Admission of POST /v1/models/{id}/predict, with PREDICT_TENANT_CONCURRENCY 1 so that one request
 * holding the tenant's place shows: a request takes its place before its body is read (one beyond
 * the bounds is refused without uploading it) and gives it back however it ends.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startApi, type Api } from '../../helpers/api.js';
import { waitFor } from '../../helpers/harness.js';
import { openRequest, parseAnswer, refusedBody, responseTo, within } from '../../helpers/raw-http.js';
import { pattern, storeTrainedModel } from '../../helpers/trained-model.js';

const BOUNDARY = 'held';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;
/** The start of an `image` part: its headers and a few bytes, not its end. */
const IMAGE_START = `--${BOUNDARY}\r\ncontent-disposition: form-data; name="image"; filename="held.png"\r\ncontent-type: image/png\r\n\r\nPNG`;

/** An API with one prediction place per tenant and a model to predict with; `env` on top. */
function withApi(env: Record<string, string>) {
  const svc = { api: undefined as unknown as Api, model: '' };
  before(async () => {
    svc.api = await startApi({ PREDICT_TENANT_CONCURRENCY: '1', ...env });
    svc.model = await storeTrainedModel(svc.api.deps);
    // the prediction child starts at the first prediction: started here, not in a test
    assert.equal((await predict(svc, { examples: [pattern(0)] })).status, 200);
  });
  after(() => svc.api?.stop());
  return svc;
}

/** A prediction sent as a client sends it, over a socket. */
async function predict(svc: { api: Api; model: string }, body: unknown, model = svc.model) {
  const res = await fetch(`${svc.api.url}/v1/models/${model}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** A prediction answered 200, once the tenant's place is free (429 until then). */
const predictWhenFree = (svc: { api: Api; model: string }, what: string) =>
  waitFor(what, async () => {
    const res = await predict(svc, { examples: [pattern(1)] });
    if (res.status === 429) return undefined;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res;
  });

describe('a request holding the place while it uploads', () => {
  const svc = withApi({
    // the held upload below must not be given up while the test runs, however slow the machine
    UPLOAD_IDLE_TIMEOUT_SECONDS: '3600',
    UPLOAD_RATE_GRACE_SECONDS: '3600',
    PREDICT_MAX_BODY_BYTES: '65536',
    // a child stopped below must not be given up while the test runs
    PREDICT_TIMEOUT_MS: '120000',
    // counted in Redis, where the request whose client goes away early waits; never reached
    RATE_LIMIT_PER_MINUTE: '1000000',
  });
  const path = () => `/v1/models/${svc.model}/predict`;

  test('a request beyond PREDICT_TENANT_CONCURRENCY is a 429 before its body is read, while another uploads; the place is back once that one is gone', async () => {
    const held = openRequest(svc.api.url, { path: path(), headers: { 'content-type': MULTIPART, 'content-length': '1000' }, start: IMAGE_START });
    try {
      const busy = await waitFor('the uploading request to hold the place', async () => {
        const res = await predict(svc, { examples: [pattern(0)] });
        if (res.status === 200) return undefined;
        assert.equal(res.status, 429, JSON.stringify(res.body));
        return res;
      });
      assert.equal(busy.body.type, 'urn:tfjs-adapt:problem:too_many_predictions');

      // headers only, no byte of the body: answered all the same, so the body was never waited for
      for (const type of [MULTIPART, 'application/json']) {
        const refused = openRequest(svc.api.url, { path: path(), headers: { 'content-type': type, 'content-length': '1000', connection: 'close' }, start: '' });
        try {
          const res = parseAnswer(await within(`the refusal of a ${type} request`, refused.closed));
          assert.equal(res.status, 429, res.text);
          assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
          assert.equal(res.headers['retry-after'], '1');
          assert.equal(res.body.type, 'urn:tfjs-adapt:problem:too_many_predictions');
          assert.match(res.body.detail, /PREDICT_TENANT_CONCURRENCY/);
        } finally {
          refused.socket.destroy();
        }
      }
    } finally {
      held.socket.destroy();
    }
    const freed = await predictWhenFree(svc, 'the place of the request whose client went away to be given back');
    assert.equal(freed.body.predictions[0].classes[0].class, 'top-right');
  });

  test('a request refused with a 4xx after it took its place gives it back: the next one is answered', async () => {
    const refusals: Array<[number, unknown, string?]> = [
      // the handler's shape check, the schema, the model's record, the body limit (PREDICT_MAX_BODY_BYTES)
      [400, { examples: [pattern(0).slice(1)] }],
      [400, { examples: [] }],
      [404, { examples: [pattern(0)] }, 'mdl_nope'],
      [413, { examples: [pattern(0)], padding: 'x'.repeat(70_000) }],
    ];
    for (const [status, body, model] of refusals) {
      const refused = await predict(svc, body, model);
      assert.equal(refused.status, status, JSON.stringify(refused.body));
      const next = await predict(svc, { examples: [pattern(2)] });
      assert.equal(next.status, 200, `after a ${status}: ${JSON.stringify(next.body)}`);
      assert.equal(next.body.predictions[0].classes[0].class, 'bottom');
    }
  });

  test('a request whose client goes away while its prediction is in the child keeps its place until the child answers', async () => {
    const pool = svc.api.app.predictions;
    const pid = pool.stats()[0].pid;
    assert.ok(pid, 'the prediction child is up');
    const body = JSON.stringify({ examples: [pattern(0)] });
    const handled = responseTo(svc.api, 'gone-while-predicting');
    process.kill(pid, 'SIGSTOP');
    try {
      const gone = openRequest(svc.api.url, {
        path: path(),
        headers: { 'content-type': 'application/json', 'content-length': String(body.length), 'x-test': 'gone-while-predicting' },
        start: body,
      });
      await waitFor('the prediction to reach the stopped child', async () => pool.stats()[0].inFlight === 1);
      gone.socket.destroy();
      const res = await within('the request to reach the server', handled);
      await waitFor('the server to see the connection closed', async () => res.closed);
      const busy = await predict(svc, { examples: [pattern(0)] });
      assert.equal(busy.status, 429, JSON.stringify(busy.body));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await predictWhenFree(svc, 'the child to answer and the place to be given back');
  });

  test('a place released before its prediction is sent refuses to send it; a second release gives back nothing more', async () => {
    const pool = svc.api.app.predictions;
    const first = pool.reserve('direct');
    assert.throws(() => pool.reserve('direct'), { reason: 'tenant_busy' });
    first.release();
    const request = {
      model: { id: svc.model, dir: svc.api.deps.artifacts.modelDir(svc.model) },
      inputShape: [64],
      preprocessing: null,
      examples: new Float32Array(64),
      count: 1,
    };
    await assert.rejects(first.predict(request), { reason: 'place_released' });
    const second = pool.reserve('direct');
    first.release();
    assert.throws(() => pool.reserve('direct'), { reason: 'tenant_busy' }, 'the second place is still held');
    second.release();
    pool.reserve('direct').release();
  });

  test('a request whose client went away before it took its place does not keep it', async () => {
    // the close must land while the request waits in its onRequest hooks: here for its rate-limit
    // count in a Redis stopped for the moment
    const pid = Number(/process_id:(\d+)/.exec(await svc.api.deps.redis.info('server'))?.[1]);
    assert.ok(pid > 0, 'the Redis server names its process');
    const handled = responseTo(svc.api, 'gone-early');
    process.kill(pid, 'SIGSTOP');
    let res: ServerResponse;
    try {
      const { hostname, port } = new URL(svc.api.url);
      connect(Number(port), hostname)
        .on('error', () => undefined)
        .end(`POST ${path()} HTTP/1.1\r\nhost: ${hostname}\r\nx-test: gone-early\r\ncontent-type: ${MULTIPART}\r\ncontent-length: 1000\r\n\r\n`);
      res = await within('the request to reach the server', handled);
      await waitFor('the server to see the connection closed', async () => res.closed);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor('the server to end its handling of the request', async () => res.writableEnded);
    const next = await predict(svc, { examples: [pattern(0)] });
    assert.equal(next.status, 200, JSON.stringify(next.body));
  });
});

describe('a request holding the place while its body stalls', () => {
  const svc = withApi({ UPLOAD_IDLE_TIMEOUT_SECONDS: '1' });

  test('a body that stalls is a 408 and gives the place back: the next request is answered', async () => {
    const held = openRequest(svc.api.url, {
      path: `/v1/models/${svc.model}/predict`,
      headers: { 'content-type': MULTIPART, 'content-length': '1000' },
      start: IMAGE_START,
    });
    try {
      refusedBody(await within('the 408 and the closed connection', held.closed), 'upload_stalled');
    } finally {
      held.socket.destroy();
    }
    const next = await predict(svc, { examples: [pattern(0)] });
    assert.equal(next.status, 200, JSON.stringify(next.body));
  });
});
