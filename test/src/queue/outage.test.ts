import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startRedisServer } from '../../../src/queue/redis-server.js';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';

let h: Harness;
let data: { train: string; test: string };
let stopRestarted: (() => Promise<void>) | undefined;

before(async () => {
  // a rate limit, so that its counting in Redis is part of what an outage must not break
  h = await startHarness({ RECONCILE_INTERVAL_MS: '500', RATE_LIMIT_PER_MINUTE: '100000' });
  data = await registerMnist(h, 500, 100);
});
after(async () => {
  await h?.stop();
  await stopRestarted?.();
});

test('a job the queue lost is queued again by reconciliation and runs', async () => {
  const busy = (
    await h.request(
      'POST',
      '/v1/jobs',
      trainSpec(data, { hyperparameters: { epochs: 200, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } } }),
    )
  ).body;
  const lost = (await h.request('POST', '/v1/jobs', trainSpec(data))).body;
  await waitFor('the busy job to run', async () => (await h.request('GET', `/v1/jobs/${busy.id}`)).body.status === 'running');
  const { TrainingQueue } = await import('../../../src/queue/training-queue.js');
  const { createRedis } = await import('../../../src/queue/redis-server.js');
  const conn = createRedis(h.redis.url, { maxRetriesPerRequest: null });
  const q = new TrainingQueue(conn, { attempts: 1, backoffMs: 1000 });
  await (await q.queue.getJob(lost.id))!.remove();
  await q.close();
  conn.disconnect();
  await h.request('POST', `/v1/jobs/${busy.id}/cancel`);
  const done = await waitForJob(h, lost.id, 300_000);
  assert.equal(done.status, 'succeeded');
});

test('with Redis down, creating a job answers 503 quickly and creates nothing, cancel and pause answer 503 and change nothing, /ready names the component; when Redis returns, work continues by itself', async () => {
  // unfinished when Redis stops (queued or running; it cannot start while Redis is away), and it ends by itself
  const unfinished = (
    await h.request(
      'POST',
      '/v1/jobs',
      trainSpec(data, { hyperparameters: { epochs: 8, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } } }),
    )
  ).body;
  const before = (await h.request('GET', '/v1/jobs?limit=200')).body.data.length;
  const port = Number(new URL(h.redis.url).port);
  await h.redis.stop();

  const started = Date.now();
  const res = await h.request('POST', '/v1/jobs', trainSpec(data));
  assert.equal(res.status, 503, JSON.stringify(res.body));
  assert.ok(Date.now() - started < 5000, `answered after ${Date.now() - started} ms`);
  assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
  const ready = await h.request('GET', '/ready');
  assert.equal(ready.status, 503);
  assert.deepEqual(ready.body, { status: 'unavailable', checks: { redis: 'down', store: 'ok' } }, 'which component, no internal error text');
  assert.equal((await h.request('GET', '/v1/jobs?limit=200')).body.data.length, before, 'nothing half-created');
  for (const action of ['cancel', 'pause']) {
    const refused = await h.request('POST', `/v1/jobs/${unfinished.id}/${action}`);
    assert.equal(refused.status, 503, `${action}: ${JSON.stringify(refused.body)}`);
    assert.match(refused.headers.get('content-type') ?? '', /problem\+json/);
    const now = (await h.request('GET', `/v1/jobs/${unfinished.id}`)).body;
    // the job may run on while Redis is away; what must not happen is what was refused
    assert.ok(
      !['cancelled', 'paused'].includes(now.status) && !now.cancelRequested && !now.pauseRequested,
      `${action} changed nothing: ${JSON.stringify(now)}`,
    );
  }

  const again = await startRedisServer(join(h.dataDir, 'redis'), { port });
  stopRestarted = () => again.stop();
  await waitFor('readiness after Redis returns', async () => (await h.request('GET', '/ready')).status === 200, 30_000);
  // bounds for a hang only: how long the jobs train is the machine's business
  assert.equal((await waitForJob(h, unfinished.id, 300_000)).status, 'succeeded');
  const job = await h.request('POST', '/v1/jobs', trainSpec(data));
  assert.equal(job.status, 202);
  assert.equal((await waitForJob(h, job.body.id, 300_000)).status, 'succeeded');
});
