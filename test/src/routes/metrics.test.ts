import assert from 'node:assert/strict';
import { truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createRedis } from '../../../src/queue/redis-server.js';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';
import { readSse } from '../../helpers/sse.js';

let h: Harness;
let data: { train: string; test: string };

// one attempt: the corrupt-dataset job below fails at once instead of being retried with backoff
before(async () => {
  h = await startHarness({ JOB_ATTEMPTS: '1' });
  // the training job is watched, not judged: a small slice
  data = await registerMnist(h, 750, 100);
});
after(() => h?.stop());

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format strictly enough that a malformed line fails the test. */
async function scrape(): Promise<{ text: string; samples: Sample[]; types: Map<string, string> }> {
  const res = await fetch(`${h.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v!;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { text, samples, types };
}

async function createJob(spec: unknown) {
  const res = await h.request('POST', '/v1/jobs', spec);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body;
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

test('a scrape names every metric family with its type, all job statuses at 0, the queue up, and process metrics', async () => {
  const { samples, types } = await scrape();
  for (const status of ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled']) {
    assert.equal(value(samples, 'tfjs_adapt_jobs', { status }), 0, `tfjs_adapt_jobs{status="${status}"}`);
  }
  assert.equal(types.get('tfjs_adapt_jobs'), 'gauge');
  assert.equal(types.get('tfjs_adapt_job_duration_seconds'), 'histogram');
  assert.equal(types.get('tfjs_adapt_training_samples_per_second'), 'gauge');
  assert.equal(types.get('tfjs_adapt_job_errors'), 'gauge');
  assert.equal(types.get('tfjs_adapt_http_errors_total'), 'counter');
  assert.equal(value(samples, 'tfjs_adapt_queue_up'), 1);
  assert.equal(value(samples, 'tfjs_adapt_queue_depth'), 0);
  assert.equal(value(samples, 'tfjs_adapt_queue_jobs', { state: 'active' }), 0);
  assert.ok(value(samples, 'process_cpu_user_seconds_total')! > 0, 'process CPU time');
  assert.ok(value(samples, 'nodejs_heap_size_used_bytes')! > 0, 'heap size');
});

test('error answers are counted by status and problem code', async () => {
  const before = value((await scrape()).samples, 'tfjs_adapt_http_errors_total', { status: '404', code: 'not_found' }) ?? 0;
  assert.equal((await h.request('GET', '/v1/jobs/job_missing')).status, 404);
  assert.equal((await h.request('POST', '/v1/jobs', { type: 'nope' })).status, 400);
  const { samples } = await scrape();
  assert.equal(value(samples, 'tfjs_adapt_http_errors_total', { status: '404', code: 'not_found' }), before + 1);
  assert.equal(value(samples, 'tfjs_adapt_http_errors_total', { status: '400', code: 'validation' }), 1);
});

test('while a job trains: running 1 and its samples/s; when it ends: counted under its final status, one observation in the duration histogram', async () => {
  // 1000 epochs: no machine ends it before the scrape; it ends by cancel, whose status the figures must follow
  const job = await createJob(trainSpec(data, { hyperparameters: { epochs: 1000, batchSize: 32, seed: 3, optimizer: { name: 'adam', learningRate: 0.003 } } }));
  await readSse(`${h.url}/v1/jobs/${job.id}/events`, { stopAfter: (m) => m.event === 'metrics' });
  const during = (await scrape()).samples;
  const state = (await h.request('GET', `/v1/jobs/${job.id}`)).body;
  assert.equal(state.status, 'running');
  assert.equal(value(during, 'tfjs_adapt_jobs', { status: 'running' }), 1);
  const sps = during.filter((s) => s.name === 'tfjs_adapt_training_samples_per_second');
  assert.equal(sps.length, 1, 'one backend series');
  assert.ok(sps[0].value > 0, 'samples/s of the running job');
  assert.equal(sps[0].labels.backend, state.backend);

  assert.equal((await h.request('POST', `/v1/jobs/${job.id}/cancel`)).status, 202);
  const done = await waitForJob(h, job.id);
  assert.equal(done.status, 'cancelled', JSON.stringify(done.error));
  const { samples } = await scrape();
  assert.equal(value(samples, 'tfjs_adapt_jobs', { status: 'cancelled' }), 1);
  assert.equal(value(samples, 'tfjs_adapt_jobs', { status: 'running' }), 0);
  assert.equal(samples.filter((s) => s.name === 'tfjs_adapt_training_samples_per_second').length, 0, 'no throughput once nothing runs');

  const labels = { type: 'train', status: 'cancelled' };
  assert.equal(value(samples, 'tfjs_adapt_job_duration_seconds_count', labels), 1);
  const seconds = (Date.parse(done.finishedAt) - Date.parse(done.startedAt)) / 1000;
  assert.ok(Math.abs(value(samples, 'tfjs_adapt_job_duration_seconds_sum', labels)! - seconds) < 0.01, `sum ≈ ${seconds} s`);
  const buckets = samples.filter((s) => s.name === 'tfjs_adapt_job_duration_seconds_bucket' && s.labels.status === 'cancelled');
  assert.equal(buckets.at(-1)!.labels.le, '+Inf');
  assert.equal(buckets.at(-1)!.value, 1);
  for (const b of buckets) assert.equal(b.value, b.labels.le === '+Inf' || seconds <= Number(b.labels.le) ? 1 : 0, `bucket le=${b.labels.le}`);
});

test('a job that fails is counted under its error code', async () => {
  const ds = await h.request('POST', '/v1/datasets', { name: 'to-corrupt', source: { builtin: 'mnist', split: 'train', limit: 100 } });
  truncateSync(join(h.config.artifactsDir, 'datasets', ds.body.id, 'labels.bin'), 0);
  const job = await createJob(trainSpec({ train: ds.body.id }));
  const done = await waitForJob(h, job.id);
  assert.equal(done.status, 'failed');
  const code = done.error.code as string;
  const { samples } = await waitFor(
    'the failure in a scrape',
    async () => {
      const s = await scrape();
      return value(s.samples, 'tfjs_adapt_job_errors', { code }) === 1 ? s : undefined;
    },
    5000,
  );
  assert.equal(value(samples, 'tfjs_adapt_jobs', { status: 'failed' }), 1);
  assert.equal(value(samples, 'tfjs_adapt_job_duration_seconds_count', { type: 'train', status: 'failed' }), 1);
});

test('with Redis not answering a scrape still answers in time, with the queue marked down and the store figures intact', async () => {
  // freeze the redis-server rather than stop it: the service must shut down cleanly afterwards
  const client = createRedis(h.redis.url);
  const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
  client.disconnect();
  assert.ok(pid > 0, 'the redis-server reports its pid');
  const jobCounts = (samples: Sample[]) => samples.filter((s) => s.name === 'tfjs_adapt_jobs').map((s) => `${s.labels.status}=${s.value}`);
  const stored = jobCounts((await scrape()).samples);
  process.kill(pid, 'SIGSTOP');
  try {
    const started = Date.now();
    const { samples } = await scrape();
    assert.ok(Date.now() - started < 5000, 'the scrape does not hang on the queue');
    assert.equal(value(samples, 'tfjs_adapt_queue_up'), 0);
    assert.equal(value(samples, 'tfjs_adapt_queue_depth'), undefined, 'no depth is better than a wrong one');
    assert.deepEqual(jobCounts(samples), stored, 'the job figures come from the store, not the queue');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  assert.equal(value((await scrape()).samples, 'tfjs_adapt_queue_up'), 1, 'and up again once Redis answers');
});
