/**
 * Creating, resuming and reconciling a job resolve it with the same options: a webhook to a
 * loopback host listed in WEBHOOK_ALLOWED_HOSTS is accepted by all three (resume once passed no
 * allow-list and answered 409; reconciliation passed none and failed the job `unresolvable`).
 * The API alone: no worker takes the jobs, so they stay where the test puts them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { reconcile } from '../../../workers/host/reconcile.js';
import { startApi, type Api } from '../../helpers/api.js';
import { registerMnist, trainSpec } from '../../helpers/harness.js';

const HOOK = 'http://127.0.0.1:9/hook';
let api: Api;
let spec: ReturnType<typeof trainSpec>;

before(async () => {
  api = await startApi({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1:9' });
  spec = trainSpec(await registerMnist(api, 100, 50), { webhook: { url: HOOK } });
});
after(() => api?.stop());

test('a webhook to a loopback host that is not allow-listed is refused, naming the field', async () => {
  const refused = await api.request('POST', '/v1/jobs', { ...spec, webhook: { url: 'http://127.0.0.1:10/hook' } });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.errors[0].pointer, '/webhook/url');
});

test('a paused job with an allow-listed loopback webhook resumes: 202, queued', async () => {
  const job = await api.request('POST', '/v1/jobs', spec);
  assert.equal(job.status, 202, JSON.stringify(job.body));
  assert.equal((await api.request('POST', `/v1/jobs/${job.body.id}/pause`)).status, 200, 'a queued job pauses at once');
  const resumed = await api.request('POST', `/v1/jobs/${job.body.id}/resume`);
  assert.equal(resumed.status, 202, JSON.stringify(resumed.body));
  assert.equal(resumed.body.status, 'queued');
  assert.ok(await api.deps.queue.queue.getJob(job.body.id), 'BullMQ holds it again');
});

test('a queued job with an allow-listed loopback webhook that Redis lost is queued again by reconciliation', async () => {
  const job = await api.request('POST', '/v1/jobs', spec);
  assert.equal(job.status, 202, JSON.stringify(job.body));
  const { store, queue, artifacts, live, config } = api.deps;
  await queue.queue.remove(job.body.id);
  assert.equal(await queue.queue.getJob(job.body.id), undefined, 'the queue lost it');

  const requeued = await reconcile({
    store,
    queue,
    artifacts,
    live,
    log: pino({ level: 'silent' }),
    // no queue entry is finished, so nothing is left to settle
    host: { settle: async () => assert.fail('nothing to settle') },
    settleAfterMs: 60_000,
    webhookAllowedHosts: config.webhookAllowedHosts,
    // no sweeps here
    sweeps: { advanceAll: async () => undefined },
  });
  assert.equal(requeued, 1);
  assert.equal((await api.request('GET', `/v1/jobs/${job.body.id}`)).body.status, 'queued', 'not failed unresolvable');
  assert.ok(await queue.queue.getJob(job.body.id), 'BullMQ holds it again');
});
