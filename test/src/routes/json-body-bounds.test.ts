/**
 * JSON bodies, which fastify reads before any route runs, are bounded in time as uploads are
 * (src/routes/body-watch.ts, watchParsedBodies): one that stalls or trickles is a 408 with its
 * connection closed, one whose client goes away leaves nothing behind, and one that arrives in
 * pieces at a fair pace is read as before, its watch gone once it is read.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { startApi, type Api } from '../../helpers/api.js';
import { openRequest, parseAnswer, refusedBody, responseTo, within, type RawRequest } from '../../helpers/raw-http.js';

let api: Api;
before(async () => {
  // silent for 2 s is a stall; below 4096 bytes/s after 1 s is a trickle (4 bytes every 300 ms never
  // goes silent for 2 s, so only the rate can refuse it)
  api = await startApi({ UPLOAD_IDLE_TIMEOUT_SECONDS: '2', UPLOAD_MIN_BYTES_PER_SECOND: '4096', UPLOAD_RATE_GRACE_SECONDS: '1' });
});
after(() => api?.stop());

/** A job spec whose JSON is `bytes` long at least (padded with spaces, which JSON ignores), refused as invalid once read. */
function jobBody(bytes = 200): string {
  const json = JSON.stringify({ name: 'held', dataset: 'ds_none', model: { layers: [] } });
  return json + ' '.repeat(Math.max(0, bytes - json.length));
}

/** POST /v1/jobs with `start` of `body` sent after its headers, and its x-test marker. */
function openJob(body: string, start: string, marker: string): RawRequest {
  return openRequest(api.url, {
    path: '/v1/jobs',
    headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-test': marker },
    start,
  });
}

/** An ordinary request on a connection of its own is answered as it always is. */
async function answered() {
  const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jobBody() });
  assert.notEqual(res.status, 408);
  assert.ok(res.status < 500, `an ordinary answer, not ${res.status}`);
  const problem = (await res.json()) as { type: string };
  assert.doesNotMatch(problem.type, /upload_/);
}

/** Listeners only the body's watch adds: none are left once the request is done with. */
function watchListeners(req: IncomingMessage): Record<string, number> {
  return Object.fromEntries(['pause', 'resume', 'data'].map((e) => [e, req.listenerCount(e)]));
}

const closedResponse = (res: ServerResponse) => new Promise<void>((resolve) => (res.closed ? resolve() : res.once('close', () => resolve())));

test('a JSON body that stops after half its content-length is a 408 upload_stalled, its connection closed; the next request is answered', async () => {
  const body = jobBody();
  const seen = responseTo(api, 'stall');
  const held = openJob(body, body.slice(0, body.length / 2), 'stall');
  try {
    const res = refusedBody(await within('the answer and the closed connection', held.closed), 'upload_stalled');
    assert.match(res.body.detail, /no bytes of the request body arrived for 2 s.*UPLOAD_IDLE_TIMEOUT_SECONDS/);
  } finally {
    held.socket.destroy();
  }
  const res = await seen;
  await within('the response to close', closedResponse(res));
  assert.deepEqual(watchListeners(res.req), { pause: 0, resume: 0, data: 0 });
  await answered();
});

test('a JSON body that trickles 4 bytes every 300 ms is a 408 upload_too_slow once it has run UPLOAD_RATE_GRACE_SECONDS, its connection closed', async () => {
  const body = jobBody(64 << 10);
  const held = openJob(body, '', 'trickle');
  let sent = 0;
  const drip = setInterval(() => {
    if (held.socket.destroyed || sent >= body.length) return clearInterval(drip);
    held.socket.write(body.slice(sent, sent + 4));
    sent += 4;
  }, 300);
  try {
    const res = refusedBody(await within('the answer and the closed connection', held.closed), 'upload_too_slow');
    assert.match(
      res.body.detail,
      /of the request body arrived.*bytes\/s on average; after its first 1 s \(UPLOAD_RATE_GRACE_SECONDS\).* at least 4096 bytes\/s \(UPLOAD_MIN_BYTES_PER_SECOND\)/,
    );
  } finally {
    clearInterval(drip);
    held.socket.destroy();
  }
  await answered();
});

test('a JSON body whose client goes away halfway leaves no watch behind, and the service answers on', async () => {
  const body = jobBody();
  const seen = responseTo(api, 'gone');
  const held = openJob(body, body.slice(0, body.length / 2), 'gone');
  const res = await within('the request to reach the server', seen);
  held.socket.destroy();
  await within('the response to close', closedResponse(res));
  // a watch left running would fire within the idle timeout: wait past it, so that what it would do
  // (an error nobody listens for ends the process) happens before the next request
  await new Promise((r) => setTimeout(r, 2500));
  assert.deepEqual(watchListeners(res.req), { pause: 0, resume: 0, data: 0 });
  await answered();
});

test('a JSON body sent in pieces at a fair pace is read and answered as usual, on a connection that stays open, its watch gone', async () => {
  const body = jobBody(16 << 10);
  const seen = responseTo(api, 'pieces');
  const held = openJob(body, body.slice(0, 100), 'pieces');
  try {
    // after the headers, so that the body is still to come when fastify starts reading it
    await new Promise((r) => setTimeout(r, 200));
    held.socket.write(body.slice(100, 8000));
    await new Promise((r) => setTimeout(r, 200));
    held.socket.write(body.slice(8000));
    const res = await within('the response', seen);
    await within('the response to finish', closedResponse(res));
    const answer = parseAnswer(await within('the answer', waitForAnswer(held)));
    assert.equal(answer.status, 400, answer.text);
    assert.equal(answer.body.type, 'urn:tfjs-adapt:problem:validation');
    assert.notEqual(answer.headers.connection, 'close');
    assert.equal(held.socket.destroyed, false, 'the connection stays open');
    assert.deepEqual(watchListeners(res.req), { pause: 0, resume: 0, data: 0 });
  } finally {
    held.socket.destroy();
  }
});

/** The whole of the first answer on `held`'s connection (its JSON body complete). */
async function waitForAnswer(held: RawRequest): Promise<string> {
  for (;;) {
    const text = held.sent();
    const [head = '', rest = ''] = text.split('\r\n\r\n', 2);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
    if (Number.isFinite(length) && Buffer.byteLength(rest) >= length) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
}
