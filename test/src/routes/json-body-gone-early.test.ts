/**
 * A JSON body whose client goes away while the onRequest hooks await, before fastify reads it
 * (src/routes/body-watch.ts, watchParsedBodies): the request is still handled to its end, whether
 * all of its body had arrived or part of it. The other bounds on JSON bodies (stall, trickle, a
 * client gone while its body is read) are json-body-bounds.test.ts's.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { startApi, type Api } from '../../helpers/api.js';
import { waitFor } from '../../helpers/harness.js';
import { openRequest, responseTo, within } from '../../helpers/raw-http.js';

let api: Api;
before(async () => {
  // never reached: it has every request counted in Redis, where the ones below wait (without API
  // keys the tenant's limit is otherwise 0, unlimited, and the count is not even asked for)
  api = await startApi({ RATE_LIMIT_PER_MINUTE: '1000000' });
});
after(() => api?.stop());

/** A job spec, refused as invalid once read. */
const body = JSON.stringify({ name: 'gone', dataset: 'ds_none', model: { layers: [] } }) + ' '.repeat(200);

/** Listeners the body's watch adds: none are left once the request is done with. */
function watchListeners(req: IncomingMessage): Record<string, number> {
  return Object.fromEntries(['pause', 'resume', 'data'].map((e) => [e, req.listenerCount(e)]));
}

// whole: the request's stream holds all of the body, and drops it when destroyed; half: the rest is still to come
for (const [what, share] of [
  ['whole', 1],
  ['half', 0.5],
] as const) {
  test(`a JSON body sent ${what}, whose client goes away while the onRequest hooks await: the request is handled to its end, the next one answered`, async () => {
    // The close must land before fastify reads the body. Here the request waits for its rate-limit
    // count in a Redis stopped for the moment, as behind a slow Redis
    const pid = Number(/process_id:(\d+)/.exec(await api.deps.redis.info('server'))?.[1]);
    assert.ok(pid > 0, 'the Redis server names its process');
    const start = body.slice(0, body.length * share);
    const marker = `gone-early-${what}`;
    const seen = responseTo(api, marker);
    process.kill(pid, 'SIGSTOP');
    let res: ServerResponse;
    try {
      const held = openRequest(api.url, {
        path: '/v1/jobs',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length), 'x-test': marker },
        start,
      });
      res = await within('the request to reach the server', seen);
      const req = res.req;
      await waitFor('the server to receive what was sent', async () => req.readableLength === start.length && req.complete === (share === 1));
      assert.equal(req.readableFlowing, null, 'nothing reads the body yet: the request waits for its count');
      held.socket.destroy();
      await waitFor('the server to see the connection closed', async () => req.destroyed);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor('the server to end its handling of the request', async () => res.writableEnded);
    assert.deepEqual(watchListeners(res.req), { pause: 0, resume: 0, data: 0 });
    const next = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(next.status, 400);
    assert.equal(((await next.json()) as { type: string }).type, 'urn:tfjs-adapt:problem:validation');
  });
}
