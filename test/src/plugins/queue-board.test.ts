import assert from 'node:assert/strict';
import bullmq = require('bullmq');
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { createRedis, startRedisServer } from '../../../src/queue/redis-server.js';
import { QUEUE_NAME } from '../../../src/queue/training-queue.js';
import { WEBHOOK_QUEUE_NAME } from '../../../src/webhooks/webhook-queue.js';
import { startHarness, trainSpec, waitFor, type Harness } from '../../helpers/harness.js';

const ADMIN = 'admin-token-0123456789';
const OTHER = 'other-token-0123456789';
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const API = '/admin/queues/api/queues';
let h: Harness;
let job: any;
let stopRestartedRedis: (() => Promise<void>) | undefined;

before(async () => {
  h = await startHarness({ API_KEYS: `ops:${ADMIN},team:${OTHER}`, ADMIN_TENANTS: 'ops', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1:9' });
  const as = bearer(OTHER);
  const train = await h.request('POST', '/v1/datasets', { name: 't', source: { builtin: 'mnist', split: 'train', limit: 200 } }, as);
  // BullMQ keeps finished entries too (trimmed by count and age), so a short job stays listed
  const spec = trainSpec(
    { train: train.body.id },
    {
      hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } },
      webhook: { url: 'http://127.0.0.1:9/hook', secret: 'do-not-show-this' },
    },
  );
  const created = await h.request('POST', '/v1/jobs', spec, as);
  assert.equal(created.status, 202, JSON.stringify(created.body));
  job = created.body;
});
after(async () => {
  await h?.stop();
  await stopRestartedRedis?.();
});

test('the board page is served to an admin tenant, with its scripts', async () => {
  const page = await h.request('GET', '/admin/queues', undefined, basic('ops', ADMIN));
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.body, /<base href="\/admin\/queues\/"/);
  assert.match(page.body, /<title>tfjs-adapt queues<\/title>/);
  const script = /src="(static\/js\/main\.[^"]+\.js)"/.exec(page.body)?.[1];
  assert.ok(script, 'the page loads its main script');
  const js = await h.request('GET', `/admin/queues/${script}`, undefined, basic('ops', ADMIN));
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /javascript/);
});

test('its JSON API lists both queues, the training queue with a job another tenant created through POST /v1/jobs, without its webhook', async () => {
  const listed = await waitFor('the job in the board', async () => {
    const res = await h.request('GET', `${API}?activeQueue=${QUEUE_NAME}&status=latest`, undefined, basic('ops', ADMIN));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.queues.find((q: any) => q.name === QUEUE_NAME)?.jobs.find((j: any) => j.id === job.id) && res.body;
  });
  assert.deepEqual(listed.queues.map((q: any) => q.name).sort(), [QUEUE_NAME, WEBHOOK_QUEUE_NAME].sort());
  const training = listed.queues.find((q: any) => q.name === QUEUE_NAME);
  assert.equal(training.displayName, 'training');
  assert.equal(training.readOnlyMode, true);
  const entry = training.jobs.find((j: any) => j.id === job.id);
  assert.equal(entry.data.jobId, job.id);
  assert.equal(entry.data.spec.webhook, undefined, 'the queue entry carries no webhook: the deliverer reads it from the store');

  const one = await h.request('GET', `${API}/${QUEUE_NAME}/${job.id}`, undefined, bearer(ADMIN));
  assert.equal(one.status, 200);
  assert.doesNotMatch(JSON.stringify(one.body), /do-not-show-this/);
});

test('an entry an earlier version queued with its webhook in the task is shown without it', async () => {
  const legacy = { jobId: 'job_legacy0000000000000000', spec: { type: 'train', webhook: { url: 'http://127.0.0.1:9/old', secret: 'legacy-secret-value' } } };
  const connection = createRedis(h.redis.url, { maxRetriesPerRequest: 1 });
  const earlier = new bullmq.Queue(QUEUE_NAME, { connection });
  await earlier.add('train', legacy, { jobId: legacy.jobId, delay: 3_600_000 });
  try {
    const one = await h.request('GET', `${API}/${QUEUE_NAME}/${legacy.jobId}`, undefined, bearer(ADMIN));
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.job.data.jobId, legacy.jobId);
    assert.doesNotMatch(JSON.stringify(one.body), /legacy-secret-value/);
  } finally {
    await earlier.remove(legacy.jobId);
    await earlier.close();
    connection.disconnect();
  }
});

test('without credentials /admin answers 401 with a Basic challenge, so a browser asks for them', async () => {
  for (const [path, headers] of [
    ['/admin/queues', {}],
    [API, {}],
    ['/admin/queues', basic('ops', OTHER)], // another tenant's password
    ['/admin/queues', basic('ops', 'not-a-token-at-all-0000')],
    ['/admin/queues', { authorization: 'Basic !!!' }],
    ['/admin/queues', bearer('not-a-token-at-all-0000')],
    ['/%61dmin/queues', {}], // the router decodes it to /admin/queues
  ] as const) {
    const res = await h.request('GET', path, undefined, headers);
    assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}`);
    assert.equal(res.headers.get('www-authenticate'), 'Basic realm="tfjs-adapt admin"');
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(res.body.type, 'urn:tfjs-adapt:problem:unauthorized');
    assert.match(res.body.detail, /Basic|Bearer/);
  }
  assert.equal((await h.request('GET', '/v1/jobs', undefined, basic('ops', ADMIN))).status, 401, 'Basic is for /admin only');
});

test('a tenant that is not in ADMIN_TENANTS gets 403 problem+json, with Basic or Bearer', async () => {
  for (const headers of [basic('team', OTHER), bearer(OTHER)]) {
    const res = await h.request('GET', API, undefined, headers);
    assert.equal(res.status, 403);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(res.body.type, 'urn:tfjs-adapt:problem:forbidden');
    assert.match(res.body.detail, /"team" is not in ADMIN_TENANTS/);
  }
});

test('an admin tenant gets in with Basic and with Bearer', async () => {
  for (const headers of [basic('ops', ADMIN), bearer(ADMIN)]) {
    assert.equal((await h.request('GET', '/admin/queues', undefined, headers)).status, 200);
    assert.equal((await h.request('GET', API, undefined, headers)).status, 200);
  }
});

test('the board is read-only: actions answer 405 problem+json and change nothing', async () => {
  const headers = basic('ops', ADMIN);
  for (const [method, path] of [
    ['PUT', `${API}/${QUEUE_NAME}/retry/failed`],
    ['PUT', `${API}/${QUEUE_NAME}/clean/completed`],
    ['PUT', `${API}/${QUEUE_NAME}/${job.id}/promote`],
    ['PUT', `${API}/${QUEUE_NAME}/pause`],
    ['PUT', `${API}/${QUEUE_NAME}/empty`],
  ] as const) {
    const res = await h.request(method, path, undefined, headers);
    assert.equal(res.status, 405, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(res.body.type, 'urn:tfjs-adapt:problem:queue_read_only');
    assert.match(res.body.detail, /read-only/);
  }
  const paused = await h.request('PUT', `${API}/pause`, undefined, headers);
  assert.equal(paused.status, 200, 'pausing every queue skips read-only ones');
  const listed = await h.request('GET', API, undefined, headers);
  assert.ok(
    listed.body.queues.every((q: any) => !q.isPaused),
    'no queue was paused',
  );
  assert.equal((await h.request('GET', `/v1/jobs/${job.id}`, undefined, bearer(OTHER))).body.id, job.id);
});

test("bad input to the board's API is a 4xx problem+json naming the field", async () => {
  const headers = basic('ops', ADMIN);
  const page = await h.request('GET', `${API}?page=0`, undefined, headers);
  assert.equal(page.status, 400);
  assert.match(page.headers.get('content-type') ?? '', /application\/problem\+json/);
  assert.deepEqual(page.body.errors, [{ pointer: '/page', in: 'query', detail: 'is not valid' }]);
  assert.equal(page.body.detail, 'query /page is not valid');

  const queue = await h.request('GET', `${API}/no-such-queue/${job.id}`, undefined, headers);
  assert.equal(queue.status, 404);
  assert.equal(queue.body.type, 'urn:tfjs-adapt:problem:queue_not_found');
  const missing = await h.request('GET', `${API}/${QUEUE_NAME}/job_nope`, undefined, headers);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.type, 'urn:tfjs-adapt:problem:job_not_found');
  const route = await h.request('GET', '/admin/queues/api/nothing-here', undefined, headers);
  assert.equal(route.status, 404);
  assert.match(route.headers.get('content-type') ?? '', /application\/problem\+json/);
});

test('the board is not part of the OpenAPI document', async () => {
  const doc = await h.request('GET', '/openapi.json');
  assert.equal(doc.status, 200);
  assert.deepEqual(
    Object.keys(doc.body.paths).filter((p) => p.startsWith('/admin')),
    [],
  );
});

test('ADMIN_TENANTS must name tenants of API_KEYS', () => {
  const keys = `ops:${ADMIN},team:${OTHER}`;
  assert.deepEqual(loadConfig({ API_KEYS: keys, ADMIN_TENANTS: ' ops , ' }).adminTenants, ['ops']);
  assert.deepEqual(loadConfig({ API_KEYS: keys }).adminTenants, []);
  assert.throws(
    () => loadConfig({ API_KEYS: keys, ADMIN_TENANTS: 'ops,opps' }),
    (err: Error) => err instanceof ConfigError && /ADMIN_TENANTS names "opps", not a tenant of API_KEYS: expected some of "ops", "team"/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ ADMIN_TENANTS: 'ops' }),
    (err: Error) => err instanceof ConfigError && /API_KEYS is not/.test(err.message),
  );
});

test('with Redis away the board answers 503 problem+json, and recovers when it is back', async () => {
  const port = Number(new URL(h.redis.url).port);
  await h.redis.stop();
  const res = await h.request('GET', API, undefined, basic('ops', ADMIN));
  assert.equal(res.status, 503, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
  assert.equal(res.body.type, 'urn:tfjs-adapt:problem:queue_unavailable');

  const again = await startRedisServer(join(h.dataDir, 'redis'), { port });
  stopRestartedRedis = () => again.stop();
  await waitFor('the board after Redis returns', async () => (await h.request('GET', API, undefined, basic('ops', ADMIN))).status === 200, 30_000);
  // a job run end to end shows the worker side reconnected too: stopping BullMQ workers while
  // they still reconnect leaves their lock timer running, and this test process would not exit
  const rerun = await h.request(
    'POST',
    '/v1/jobs',
    trainSpec({ train: job.spec.data.train }, { hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } } }),
    bearer(OTHER),
  );
  assert.equal(rerun.status, 202, JSON.stringify(rerun.body));
  await waitFor(
    'the job after Redis returns',
    async () => (await h.request('GET', `/v1/jobs/${rerun.body.id}`, undefined, bearer(OTHER))).body.status === 'succeeded',
    60_000,
  );
});
