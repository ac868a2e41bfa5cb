import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { startApi } from '../../helpers/api.js';
import { startHarness, trainSpec, waitFor, type Harness } from '../../helpers/harness.js';

const A = 'tenant-a-token-0123456789';
const B = 'tenant-b-token-0123456789';
const C = 'tenant-c-token-0123456789';
let h: Harness;
const as = (token: string) => ({ authorization: `Bearer ${token}` });
let data: { train: string; test: string };
let job: any;

before(async () => {
  h = await startHarness({
    API_KEYS: `alpha:${A},beta:${B},gamma:${C}`,
    MAX_ACTIVE_JOBS_PER_TENANT: '1',
    RATE_LIMIT_PER_MINUTE: '100000',
    RATE_LIMIT_ANONYMOUS_PER_MINUTE: '100000',
    MAX_SSE_STREAMS_PER_TENANT: '2',
  });
  const train = await h.request('POST', '/v1/datasets', { name: 'a-train', source: { builtin: 'mnist', split: 'train', limit: 300 } }, as(A));
  const testSet = await h.request('POST', '/v1/datasets', { name: 'a-test', source: { builtin: 'mnist', split: 'test', limit: 100 } }, as(A));
  data = { train: train.body.id, test: testSet.body.id };
  job = await waitForJobAs((await h.request('POST', '/v1/jobs', trainSpec(data), as(A))).body.id, A);
});
after(() => h?.stop());

async function waitForJobAs(id: string, token: string) {
  for (;;) {
    const j = (await h.request('GET', `/v1/jobs/${id}`, undefined, as(token))).body;
    if (['succeeded', 'failed', 'cancelled'].includes(j.status)) return j;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('every /v1 route wants a valid bearer token: 401 problem+json without one', async () => {
  for (const [method, path] of [
    ['GET', '/v1/jobs'],
    ['POST', '/v1/jobs'],
    ['GET', `/v1/datasets/${data.train}`],
    ['GET', `/v1/models/${job.result.modelId}/model.json`],
  ]) {
    const none = await h.request(method, path);
    assert.equal(none.status, 401, `${method} ${path}`);
    assert.match(none.headers.get('content-type') ?? '', /problem\+json/);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await h.request(method, path, undefined, as('not-a-valid-token-at-all'))).status, 401);
  }
  assert.equal((await h.request('GET', '/health')).status, 200, 'health stays open for probes');
});

test("a token is only valid whole: a prefix, an extension or another tenant's name with it are all 401", async () => {
  for (const header of [`Bearer ${A.slice(0, -1)}`, `Bearer ${A}x`, `Bearer ${A.slice(0, 16)}`, `Bearer ${'x'.repeat(4096)}`, `Bearer ${A},${B}`]) {
    assert.equal((await h.request('GET', '/v1/jobs', undefined, { authorization: header })).status, 401, header.slice(0, 40));
  }
  const basic = (user: string, token: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}` });
  assert.equal((await h.request('GET', '/admin/queues', undefined, basic('beta', A))).status, 401, "Basic with another tenant's name");
  assert.equal((await h.request('GET', '/v1/jobs', undefined, basic('alpha', A))).status, 401, 'Basic is for /admin only');
});

test("/metrics needs a token when API_KEYS is set; any tenant's bearer token scrapes it (Prometheus bearer_token)", async () => {
  const none = await h.request('GET', '/metrics');
  assert.equal(none.status, 401);
  assert.match(none.headers.get('content-type') ?? '', /problem\+json/);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer');
  const scraped = await h.request('GET', '/metrics', undefined, as(B));
  assert.equal(scraped.status, 200);
  assert.match(scraped.body, /^# HELP tfjs_adapt_jobs /m);
  assert.equal((await h.request('GET', '/ready')).status, 200, 'readiness stays open for probes');
});

test('a tenant holds at most MAX_SSE_STREAMS_PER_TENANT event streams at once: one more is 429 problem+json, another tenant is not affected', async () => {
  const ds = await h.request('POST', '/v1/datasets', { name: 'c-train', source: { builtin: 'mnist', split: 'train', limit: 200 } }, as(C));
  const long = trainSpec({ train: ds.body.id }, { hyperparameters: { epochs: 500, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } } });
  const created = await h.request('POST', '/v1/jobs', long, as(C));
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const streams: AbortController[] = [];
  const open = async (token: string, id: string) => {
    const ac = new AbortController();
    streams.push(ac);
    const res = await fetch(`${h.url}/v1/jobs/${id}/events`, { headers: { accept: 'text/event-stream', ...as(token) }, signal: ac.signal });
    return { status: res.status, type: res.headers.get('content-type'), body: res.status === 200 ? undefined : await res.json() };
  };
  try {
    assert.equal((await open(C, created.body.id)).status, 200);
    assert.equal((await open(C, created.body.id)).status, 200);
    const third = await open(C, created.body.id);
    assert.equal(third.status, 429);
    assert.match(third.type ?? '', /problem\+json/);
    assert.match(third.body.type, /too_many_streams$/);
    assert.match(third.body.detail, /MAX_SSE_STREAMS_PER_TENANT/);
    assert.equal((await open(A, job.id)).status, 200, 'the other tenant still opens streams');
    streams[0].abort();
    await waitFor(
      'a stream slot freed by a closed stream',
      async () => {
        const again = await open(C, created.body.id);
        return again.status === 200;
      },
      10_000,
    );
  } finally {
    for (const s of streams) s.abort();
    await h.request('POST', `/v1/jobs/${created.body.id}/cancel`, undefined, as(C));
  }
});

test('a %-encoded path reaches the same route, so it wants the same token', async () => {
  for (const path of ['/%76%31/jobs', '/v1/%6A%6F%62%73', `/v1/jobs/${job.id.replace('_', '%5F')}`]) {
    const none = await h.request('GET', path);
    assert.equal(none.status, 401, path);
    assert.match(none.headers.get('content-type') ?? '', /problem\+json/);
    assert.equal((await h.request('GET', path, undefined, as(A))).status, 200, path);
  }
  assert.equal((await h.request('POST', '/%76%31/jobs', trainSpec(data))).status, 401, 'nothing is created without a token');
});

test('another tenant gets 404 for every object type and sees none of them in lists', async () => {
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const model = job.result.modelId;
  const paths = [
    `/v1/jobs/${job.id}`,
    `/v1/jobs/${job.id}/events`,
    `/v1/jobs/${job.id}/checkpoints`,
    `/v1/datasets/${data.train}`,
    `/v1/models/${model}`,
    `/v1/models/${model}/model.json`,
    `/v1/models/${model}/weights.bin`,
  ];
  for (const path of paths) {
    assert.equal((await h.request('GET', path, undefined, as(A))).status, 200, `owner reads ${path}`);
    assert.equal((await h.request('GET', path, undefined, as(B))).status, 404, `other tenant reads ${path}`);
  }
  for (const action of ['cancel', 'pause', 'resume'])
    assert.equal((await h.request('POST', `/v1/jobs/${job.id}/${action}`, undefined, as(B))).status, 404, action);
  assert.equal((await h.request('DELETE', `/v1/datasets/${data.train}`, undefined, as(B))).status, 404);
  for (const list of ['/v1/jobs', '/v1/datasets', '/v1/models']) {
    assert.equal((await h.request('GET', list, undefined, as(B))).body.data.length, 0, list);
    assert.ok((await h.request('GET', list, undefined, as(A))).body.data.length > 0, list);
  }
  const borrowing = await h.request('POST', '/v1/jobs', { ...trainSpec(data), type: 'finetune', model: { base: model }, strategy: { kind: 'full' } }, as(B));
  assert.equal(borrowing.status, 400);
  const pointers = borrowing.body.errors.map((e: any) => e.pointer);
  assert.ok(pointers.includes('/data/train') && pointers.includes('/model/base'), JSON.stringify(borrowing.body.errors));
});

test('a tenant over its unfinished-job limit gets 429', async () => {
  const long = trainSpec(data, { hyperparameters: { epochs: 500, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } } });
  const first = await h.request('POST', '/v1/jobs', long, as(A));
  assert.equal(first.status, 202);
  const second = await h.request('POST', '/v1/jobs', long, as(A));
  assert.equal(second.status, 429);
  assert.match(second.headers.get('content-type') ?? '', /problem\+json/);
  await h.request('POST', `/v1/jobs/${first.body.id}/cancel`, undefined, as(A));
});

test('without API_KEYS the service only binds loopback; bad keys are refused at start', () => {
  assert.throws(() => loadConfig({ HOST: '0.0.0.0' }), ConfigError);
  assert.doesNotThrow(() => loadConfig({ HOST: '127.0.0.1' }));
  assert.doesNotThrow(() => loadConfig({ HOST: '0.0.0.0', API_KEYS: `alpha:${A}` }));
  assert.throws(() => loadConfig({ API_KEYS: 'alpha:short' }), /at least 16/);
});

test('rate limits answer 429 problem+json with Retry-After: per tenant, and per IP for requests without valid credentials', async () => {
  // the limits are the API's alone: no worker host needed
  const limited = await startApi({ API_KEYS: `alpha:${A}`, RATE_LIMIT_PER_MINUTE: '5', RATE_LIMIT_ANONYMOUS_PER_MINUTE: '3' });
  try {
    const anonymous: number[] = [];
    for (let i = 0; i < 5; i++) anonymous.push((await limited.request('GET', '/v1/jobs', undefined, i % 2 ? as('a-wrong-token-0123456789') : {})).status);
    assert.deepEqual(anonymous, [401, 401, 401, 429, 429], 'wrong and missing tokens count against the IP alike');
    const refused = await limited.request('GET', '/metrics');
    assert.equal(refused.status, 429);
    assert.match(refused.headers.get('content-type') ?? '', /problem\+json/);
    assert.match(refused.body.detail, /without valid credentials/);

    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 7; i++) {
      const r = await limited.request('GET', '/v1/jobs', undefined, as(A));
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers.get('retry-after');
    }
    assert.ok(
      statuses.slice(0, 5).every((s) => s === 200),
      JSON.stringify(statuses),
    );
    assert.equal(statuses[6], 429);
    assert.ok(Number(retryAfter) > 0 && Number(retryAfter) <= 60);
  } finally {
    await limited.stop();
  }
});
