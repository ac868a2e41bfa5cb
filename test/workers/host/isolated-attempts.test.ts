import assert from 'node:assert/strict';
import { existsSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { childProcesses, watchChildren } from '../../helpers/processes.js';
import { registerMnist, startHarness, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';

const CHILD = 'training/processor';
const learned = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'samplesPerSecond' && k !== 'epochSeconds'));
const TOKENS = { a: 'token-of-tenant-a-0123456789', b: 'token-of-tenant-b-0123456789' };
type Tenant = keyof typeof TOKENS;
/** The harness as one tenant sees it: every request carries its token. */
const as = (h: Harness, tenant: Tenant): Harness => ({
  ...h,
  request: (method, path, body, headers = {}) => h.request(method, path, body, { authorization: `Bearer ${TOKENS[tenant]}`, ...headers }),
});

/** A service with two tenants for one test, stopped after it: only its training children are this process's then. */
async function withService(env: Record<string, string>, body: (h: Harness) => Promise<void>): Promise<void> {
  // admission by cost would refuse the memory hog: these tests are about what the host does when a job gets through
  const h = await startHarness({
    API_KEYS: `a:${TOKENS.a},b:${TOKENS.b}`,
    JOB_BACKOFF_MS: '100',
    JOB_MAX_MEMORY_BYTES: String(64 * 1024 ** 3),
    JOB_MAX_FLOPS: '1e21',
    ...env,
  });
  try {
    await body(h);
  } finally {
    await h.stop();
  }
}

/** Runs a job to its end. */
async function run(h: Harness, spec: unknown): Promise<any> {
  const res = await h.request('POST', '/v1/jobs', spec);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return waitForJob(h, res.body.id, 300_000);
}

/** Runs a job to its end; `pids`: every training child alive meanwhile, the one it ran in among them (watching /proc costs CPU: only where a test reads them). */
async function runWatched(h: Harness, spec: unknown): Promise<{ job: any; pids: Set<number> }> {
  const watch = watchChildren(process.pid, CHILD);
  try {
    return { job: await run(h, spec), pids: watch.seen };
  } finally {
    await watch.stop();
  }
}

const eventsOf = async (h: Harness, id: string) => (await h.request('GET', `/v1/jobs/${id}/events?limit=1000`)).body.data;

test('a child that failed an attempt is never reused: the next job runs in another process, and ends as its twin', () =>
  withService({}, async (h) => {
    const [a, b] = [as(h, 'a'), as(h, 'b')];
    const spec = trainSpec(await registerMnist(b, 1000, 100), {
      hyperparameters: { epochs: 1, batchSize: 64, seed: 5, optimizer: { name: 'adam', learningRate: 0.003 } },
    });
    const twin = await run(b, spec);
    assert.equal(twin.status, 'succeeded', JSON.stringify(twin.error));

    // a dataset whose labels file lost its end fails in the child, for good
    const corrupt = await registerMnist(a, 1000, 100);
    truncateSync(join(h.config.artifactsDir, 'datasets', corrupt.train, 'labels.bin'), 4);
    const failed = await runWatched(a, trainSpec(corrupt));
    assert.equal(failed.job.status, 'failed');
    assert.equal(failed.job.error.code, 'dataset_corrupt', JSON.stringify(failed.job.error));
    assert.ok(failed.pids.size > 0);
    for (const pid of failed.pids) assert.ok(!existsSync(`/proc/${pid}`), `child ${pid}, alive during the failed attempt, is gone`);

    const next = await runWatched(b, spec);
    assert.equal(next.job.status, 'succeeded', JSON.stringify(next.job.error));
    assert.deepEqual(learned(next.job.result.metrics), learned(twin.result.metrics));
    assert.ok(
      [...next.pids].every((pid) => !failed.pids.has(pid)),
      'the next job ran in a new process',
    );
  }));

test("a child over its memory cap is killed: the job fails resource_exhausted (not retried), the next tenant's job ends as its twin", () =>
  // 384 MiB: an idle training child holds about 160 MiB, so the twin fits; the hog goes over with its weights and the first allocations of its
  // first step, long before that step's work is done (under a cap of several GB it trained for tens of seconds before it was killed)
  withService({ TRAINING_CHILD_MAX_MEMORY_BYTES: String(384 * 1024 * 1024) }, async (h) => {
    const cap = h.config.trainingChildMaxMemoryBytes;
    const [a, b] = [as(h, 'a'), as(h, 'b')];
    const spec = trainSpec(await registerMnist(b, 1000, 100), {
      hyperparameters: { epochs: 1, batchSize: 64, seed: 6, optimizer: { name: 'adam', learningRate: 0.003 } },
    });
    const twin = await run(b, spec);
    assert.equal(twin.status, 'succeeded', JSON.stringify(twin.error));

    // four 4096-unit layers: 214 MB of weights alone, several GB with adam on batches of 2048
    const hog = trainSpec(await registerMnist(a, 2048, 100), {
      model: { architecture: { kind: 'mlp', hidden: [4096, 4096, 4096, 4096], activation: 'relu' } },
      hyperparameters: { epochs: 1, batchSize: 2048, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } },
    });
    const failed = await runWatched(a, hog);
    assert.equal(failed.job.status, 'failed');
    assert.equal(failed.job.error.code, 'resource_exhausted');
    assert.equal(failed.job.error.param, '/hyperparameters/batchSize');
    assert.match(
      failed.job.error.message,
      new RegExp(`memory cap of ${cap} bytes .*TRAINING_CHILD_MAX_MEMORY_BYTES.*lower hyperparameters\\.batchSize \\(now 2048\\) or use a smaller model`),
    );
    assert.equal(failed.job.attempt, 1);
    assert.ok(!(await eventsOf(a, failed.job.id)).some((e: any) => e.data.retry), 'not retried');
    for (const pid of failed.pids) assert.ok(!existsSync(`/proc/${pid}`), `child ${pid} is gone`);

    const next = await runWatched(b, spec);
    assert.equal(next.job.status, 'succeeded', JSON.stringify(next.job.error));
    assert.deepEqual(learned(next.job.result.metrics), learned(twin.result.metrics));
    assert.ok(
      [...next.pids].every((pid) => !failed.pids.has(pid)),
      'the next job ran in a new process',
    );
  }));

test('a training child killed while it starts fails its attempt, and the job is retried instead of hanging', () =>
  withService({}, async (h) => {
    const a = as(h, 'a');
    const data = await registerMnist(a, 500, 100);
    const before = new Set(childProcesses(process.pid, CHILD));
    const job = (await a.request('POST', '/v1/jobs', trainSpec(data))).body;
    // loading tfjs takes the child a second or so: found within milliseconds, it is still starting
    let killed: number | undefined;
    for (let i = 0; i < 2000 && killed === undefined; i++) {
      killed = childProcesses(process.pid, CHILD).find((pid) => !before.has(pid));
      if (killed === undefined) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(killed, 'a training child was started');
    process.kill(killed, 'SIGKILL');

    const done = await waitForJob(a, job.id, 60_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.attempt, 2);
    const events = await eventsOf(a, job.id);
    const retry = events.findIndex((e: any) => e.data.retry);
    assert.ok(retry > 0, 'the first attempt failed and was retried');
    assert.equal(events[retry].data.error.code, 'worker_crashed');
    assert.ok(!events.slice(0, retry).some((e: any) => e.data.backend), 'the first attempt died before training began');
  }));
