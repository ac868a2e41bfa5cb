import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { registerMnist, startHarness, submitAndPause, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';

let h: Harness;
let data: { train: string; test: string };

before(async () => {
  h = await startHarness();
  // the assertions are about equality with a twin and status order, not learning: a small slice
  data = await registerMnist(h, 1500, 200);
});
after(() => h?.stop());

const LEARNING = ['loss', 'accuracy', 'testLoss', 'testAccuracy'];
const learned = (m: Record<string, number>) => Object.fromEntries(LEARNING.map((k) => [k, m[k]]));

test('pause checkpoints a running job, resume continues it, and it ends as its uninterrupted twin', async () => {
  const asked = trainSpec(data, { hyperparameters: { epochs: 4, batchSize: 32, seed: 11, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } } });
  const { paused, spec } = await submitAndPause(h, asked, 2);
  const epochs = spec.hyperparameters.epochs;
  assert.ok(paused.progress.epoch < epochs || paused.progress.step < paused.progress.steps, 'it stopped before the end');
  assert.equal((await h.request('POST', `/v1/jobs/${paused.id}/pause`)).status, 409, 'a paused job cannot be paused again');

  const r = await h.request('POST', `/v1/jobs/${paused.id}/resume`);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.status, 'queued');
  const done = await waitForJob(h, paused.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(done.attempt, 2);
  const twin = await waitForJob(h, (await h.request('POST', '/v1/jobs', spec)).body.id);
  assert.equal(twin.status, 'succeeded');
  assert.deepEqual(learned(done.result.metrics), learned(twin.result.metrics));

  const events = (await h.request('GET', `/v1/jobs/${paused.id}/events?limit=1000`)).body.data;
  const statuses = events.filter((e: any) => e.type === 'status').map((e: any) => e.data.status);
  assert.deepEqual(statuses, ['queued', 'running', 'paused', 'queued', 'running', 'succeeded']);
  assert.ok(
    events.some((e: any) => e.type === 'log' && /resum/i.test(e.data.message)),
    'an event says from where it resumed',
  );
  assert.equal((await h.request('POST', `/v1/jobs/${paused.id}/resume`)).status, 409);
});

test('a queued job pauses at once and never runs until resumed', async () => {
  const long = trainSpec(data, { hyperparameters: { epochs: 100, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } } });
  const busy = (await h.request('POST', '/v1/jobs', long)).body;
  const queued = (
    await h.request(
      'POST',
      '/v1/jobs',
      trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.003 } } }),
    )
  ).body;
  const p = await h.request('POST', `/v1/jobs/${queued.id}/pause`);
  assert.equal(p.status, 200);
  assert.equal(p.body.status, 'paused');
  await h.request('POST', `/v1/jobs/${busy.id}/cancel`);
  assert.equal((await waitForJob(h, busy.id)).status, 'cancelled');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await h.request('GET', `/v1/jobs/${queued.id}`)).body.status, 'paused');
  assert.equal((await h.request('POST', `/v1/jobs/${queued.id}/resume`)).status, 202);
  assert.equal((await waitForJob(h, queued.id)).status, 'succeeded');
});
