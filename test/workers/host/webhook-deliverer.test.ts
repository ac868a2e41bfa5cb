import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';
import { startWebhookHarness, type WebhookReceiver } from '../../helpers/webhook-receiver.js';

let h: Harness;
let data: { train: string; test: string };
let receiver: WebhookReceiver;
let stop = async () => {};

before(async () => ({ h, data, receiver, stop } = await startWebhookHarness({ examples: 500 })));
after(() => stop());

test('a finished job calls its webhook with a signed thin payload, retrying until it is taken, and logs each attempt', async () => {
  receiver.failNext = 1;
  const secret = 'a-long-shared-secret';
  const spec = {
    ...trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.003 } } }),
    webhook: { url: `http://${receiver.host}/hook`, secret },
  };
  const res = await h.request('POST', '/v1/jobs', spec);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const job = await waitForJob(h, res.body.id);
  // write-only: neither the create's answer, nor a GET, nor the list carries it
  for (const answer of [res.body, job, (await h.request('GET', '/v1/jobs?limit=10')).body]) assert.doesNotMatch(JSON.stringify(answer), new RegExp(secret));
  assert.deepEqual(job.spec.webhook, { url: spec.webhook.url });
  await waitFor('two delivery attempts', async () => receiver.received.length >= 2, 30_000);
  for (const r of receiver.received) {
    assert.deepEqual(JSON.parse(r.body), { type: 'job.succeeded', jobId: job.id, status: 'succeeded' });
    assert.equal(r.signature, `sha256=${createHmac('sha256', secret).update(r.body).digest('hex')}`);
  }
  const attempts = await waitFor('both attempts in the event log', async () => {
    const events = (await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data.filter((e: any) => e.data.webhook);
    return events.length >= 2 && events;
  });
  assert.deepEqual(
    attempts.map((e: any) => e.data.webhook),
    [
      { attempt: 1, delivered: false },
      { attempt: 2, delivered: true },
    ],
  );

  // the secret signed every delivery, yet Redis never held it: not in a key, not in the AOF
  const aof = readdirSync(join(h.dataDir, 'redis'), { recursive: true, withFileTypes: true })
    .filter((f) => f.isFile() && /\.aof/.test(f.name))
    .map((f) => readFileSync(join(f.parentPath, f.name), 'latin1'))
    .join('');
  assert.ok(aof.includes(job.id), 'the AOF read is the one this job went through');
  assert.ok(!aof.includes(secret), 'the webhook secret is not in the Redis AOF');
});

test('webhook URLs that reach loopback or private addresses are refused unless allowed, naming the field', async () => {
  for (const url of [
    'http://127.0.0.1:9/x',
    'http://10.1.2.3/x',
    'http://localhost:8080/x',
    'http://[::1]/x',
    'http://[::127.0.0.1]/x',
    'http://[64:ff9b::7f00:1]/x',
    'http://[2002:7f00:1::1]/x',
    'http://[fec0::1]/x',
    'ftp://example.com/x',
    'not a url',
    `http://127.0.0.1:${receiver.port + 1}/x`,
  ]) {
    const res = await h.request('POST', '/v1/jobs', { ...trainSpec(data), webhook: { url } });
    assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.body)}`);
    assert.ok(
      res.body.errors.some((e: any) => e.pointer === '/webhook/url'),
      url,
    );
  }
});
