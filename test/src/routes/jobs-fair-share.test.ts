import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHarness, trainSpec, waitFor, type Harness } from '../../helpers/harness.js';

/**
 * Fair share between tenants: the queue serves a tenant's first job before another tenant's
 * later ones, and no tenant runs more than MAX_RUNNING_JOBS_PER_TENANT jobs at once.
 */
const A = 'alpha-token-0123456789';
const B = 'beta-token-0123456789';
const KEYS = { API_KEYS: `alpha:${A},beta:${B}`, RATE_LIMIT_PER_MINUTE: '100000' };

type As = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
const as =
  (h: Harness, token: string): As =>
  (method, path, body) =>
    h.request(method, path, body, { authorization: `Bearer ${token}` });

async function mnist(request: As, limit: number): Promise<{ train: string }> {
  const res = await request('POST', '/v1/datasets', { name: 'mnist', source: { builtin: 'mnist', split: 'train', limit } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { train: res.body.id };
}

const short = (data: { train: string }) =>
  trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'sgd', learningRate: 0.01 } } });
// never ends by itself on any machine: each test cancels it
const endless = (data: { train: string }) =>
  trainSpec(data, { hyperparameters: { epochs: 1000, batchSize: 16, seed: 1, optimizer: { name: 'sgd', learningRate: 0.01 } } });

async function status(request: As, id: string): Promise<any> {
  return (await request('GET', `/v1/jobs/${id}`)).body;
}

async function finished(request: As, id: string): Promise<any> {
  return waitFor(
    `job ${id} to finish`,
    async () => {
      const job = await status(request, id);
      return ['succeeded', 'failed', 'cancelled'].includes(job.status) && job;
    },
    120_000,
  );
}

describe('fair share', () => {
  test("with one worker slot, a tenant's one queued job starts before another tenant's earlier queued ones", async () => {
    const h = await startHarness({ ...KEYS, WORKER_CONCURRENCY: '1' });
    try {
      const [a, b] = [as(h, A), as(h, B)];
      const [dataA, dataB] = [await mnist(a, 500), await mnist(b, 500)];
      const blocker = (await a('POST', '/v1/jobs', endless(dataA))).body;
      await waitFor('the slot to be taken', async () => (await status(a, blocker.id)).status === 'running');
      const queuedA = [];
      for (let i = 0; i < 3; i++) queuedA.push((await a('POST', '/v1/jobs', short(dataA))).body);
      const jobB = (await b('POST', '/v1/jobs', short(dataB))).body;
      assert.equal((await a('POST', `/v1/jobs/${blocker.id}/cancel`)).status, 202);

      const doneB = await finished(b, jobB.id);
      assert.equal(doneB.status, 'succeeded', JSON.stringify(doneB.error));
      const doneA = [];
      for (const job of queuedA) doneA.push(await finished(a, job.id));
      for (const job of doneA) assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      const started = (j: any) => Date.parse(j.startedAt);
      assert.ok(started(doneB) <= started(doneA[0]), `tenant beta's job started at ${doneB.startedAt}, after alpha's next one at ${doneA[0].startedAt}`);
      // alpha's own jobs keep their order
      assert.ok(started(doneA[0]) <= started(doneA[1]) && started(doneA[1]) <= started(doneA[2]));
    } finally {
      await h.stop();
    }
  });

  test('a tenant at MAX_RUNNING_JOBS_PER_TENANT waits while another tenant uses the free slot', async () => {
    const h = await startHarness({ ...KEYS, WORKER_CONCURRENCY: '2', MAX_RUNNING_JOBS_PER_TENANT: '1' });
    try {
      const [a, b] = [as(h, A), as(h, B)];
      const [dataA, dataB] = [await mnist(a, 500), await mnist(b, 500)];
      const running = (await a('POST', '/v1/jobs', endless(dataA))).body;
      await waitFor("alpha's first job to run", async () => (await status(a, running.id)).status === 'running');
      const waiting = (await a('POST', '/v1/jobs', short(dataA))).body;
      const jobB = (await b('POST', '/v1/jobs', short(dataB))).body;

      const doneB = await finished(b, jobB.id);
      assert.equal(doneB.status, 'succeeded', JSON.stringify(doneB.error));
      assert.equal((await status(a, running.id)).status, 'running', "alpha's first job still runs");
      const held = await status(a, waiting.id);
      assert.equal(held.status, 'queued', "alpha's second job waits for its tenant's running job, though a slot is free");
      assert.equal(held.startedAt, null);

      assert.equal((await a('POST', `/v1/jobs/${running.id}/cancel`)).status, 202);
      const doneA = await finished(a, waiting.id);
      assert.equal(doneA.status, 'succeeded', JSON.stringify(doneA.error));
      assert.equal(doneA.attempt, 1, 'the times it was held back are not attempts');
      const cancelled = await finished(a, running.id);
      assert.ok(Date.parse(doneA.startedAt) >= Date.parse(cancelled.finishedAt), 'it started once its tenant had a running job less');
      const events = (await a('GET', `/v1/jobs/${waiting.id}/events?limit=1000`)).body.data;
      assert.deepEqual(
        events.filter((e: any) => e.type === 'status').map((e: any) => e.data.status),
        ['queued', 'running', 'succeeded'],
      );
    } finally {
      await h.stop();
    }
  });
});
