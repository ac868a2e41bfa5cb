import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { childProcesses, watchChildren } from '../../helpers/processes.js';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';

const GRACE_MS = 1000;
/** generous on purpose: the tests assert that a stop takes effect despite a step that does not end, not how fast this machine is */
const MARGIN_MS = 30_000;
const CHILD = 'training/processor';
const learned = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'samplesPerSecond' && k !== 'epochSeconds'));

let h: Harness;
let data: { train: string; test: string };
let twin: any;

// one step of this model on a batch of 8192 MNIST images is ~2.6 TFLOP: minutes on wasm, far beyond the grace
const stuckSpec = (over: Record<string, unknown> = {}) =>
  trainSpec(data, {
    model: { architecture: { kind: 'mlp', hidden: [4096, 4096, 4096, 4096], activation: 'relu' } },
    hyperparameters: { epochs: 1, batchSize: 8192, seed: 1, optimizer: { name: 'sgd', learningRate: 0.01 } },
    ...over,
  });
const smallSpec = () => trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 256, seed: 3, optimizer: { name: 'adam', learningRate: 0.003 } } });

before(async () => {
  // admission by cost would refuse the stuck job: these tests are about what the host does when a job gets through
  h = await startHarness({ STOP_GRACE_MS: String(GRACE_MS), JOB_MAX_MEMORY_BYTES: String(64 * 1024 ** 3), JOB_MAX_FLOPS: '1e21' });
  data = await registerMnist(h, 8192, 200);
  twin = await waitForJob(h, (await h.request('POST', '/v1/jobs', smallSpec())).body.id);
  assert.equal(twin.status, 'succeeded', JSON.stringify(twin.error));
});
after(async () => {
  await h?.stop();
});

/** Starts the stuck job and waits until its child trains; returns the job and that child's pid. */
async function startStuck(over: Record<string, unknown> = {}): Promise<{ id: string; pid: number }> {
  const job = await h.request('POST', '/v1/jobs', stuckSpec(over));
  assert.equal(job.status, 202, JSON.stringify(job.body));
  await waitFor('the stuck job to train', async () => {
    const { body } = await h.request('GET', `/v1/jobs/${job.body.id}`);
    return body.status === 'running' && body.backend !== null;
  });
  const kids = childProcesses(process.pid, CHILD);
  assert.equal(kids.length, 1, `one training child while one job runs: ${kids.join(', ')}`);
  return { id: job.body.id, pid: kids[0] };
}

function assertGone(pid: number): void {
  assert.ok(!existsSync(`/proc/${pid}`), `child ${pid} is gone`);
  assert.ok(!childProcesses(process.pid, CHILD).includes(pid));
}

/** The next job runs on a healthy child and ends exactly as the twin did on a fresh one. */
async function assertNextJobAsTwin(): Promise<void> {
  const next = await waitForJob(h, (await h.request('POST', '/v1/jobs', smallSpec())).body.id);
  assert.equal(next.status, 'succeeded', JSON.stringify(next.error));
  assert.deepEqual(learned(next.result.metrics), learned(twin.result.metrics));
}

/**
 * The host either had to kill the child (the usual case here: it was in a step of minutes), and
 * then that child is gone, or the child stopped at a step's end by itself (a stop that came
 * while it still loaded), and then it may serve the next job. Which one is the machine's speed.
 */
async function assertStopped(t: { diagnostic(message: string): void }, id: string, pid: number): Promise<void> {
  const events = (await h.request('GET', `/v1/jobs/${id}/events?limit=1000`)).body.data;
  const killed = events.some((e: any) => e.type === 'log' && /was killed/.test(e.data.message));
  t.diagnostic(killed ? 'the child did not stop within the grace and was killed' : 'the child stopped at the end of a step');
  if (killed) assertGone(pid);
}

const statuses = async (id: string) =>
  (await h.request('GET', `/v1/jobs/${id}/events?limit=1000`)).body.data.filter((e: any) => e.type === 'status').map((e: any) => e.data.status);

test('cancel ends a job whose step never ends: cancelled within the grace, its child killed, the next job as its twin', async (t) => {
  const { id, pid } = await startStuck();
  const asked = Date.now();
  assert.equal((await h.request('POST', `/v1/jobs/${id}/cancel`)).status, 202);
  const done = await waitForJob(h, id, GRACE_MS + MARGIN_MS);
  assert.equal(done.status, 'cancelled');
  assert.ok(Date.now() - asked < GRACE_MS + MARGIN_MS);
  await assertStopped(t, id, pid);
  assert.deepEqual(await statuses(id), ['queued', 'running', 'cancelled']);
  await assertNextJobAsTwin();
});

test('pause ends a job whose step never ends: paused within the grace, its child killed, and it can be resumed', async (t) => {
  const { id, pid } = await startStuck();
  const asked = Date.now();
  assert.equal((await h.request('POST', `/v1/jobs/${id}/pause`)).status, 202);
  const paused = await waitFor(
    'the job to pause',
    async () => {
      const { body } = await h.request('GET', `/v1/jobs/${id}`);
      return body.status === 'paused' && body;
    },
    GRACE_MS + MARGIN_MS,
  );
  assert.equal(paused.pauseRequested, false);
  assert.ok(Date.now() - asked < GRACE_MS + MARGIN_MS);
  await assertStopped(t, id, pid);
  await assertNextJobAsTwin();

  // resumable: it runs again (a new attempt), and can be stopped again
  assert.equal((await h.request('POST', `/v1/jobs/${id}/resume`)).status, 202);
  await waitFor('the resumed job to train', async () => {
    const { body } = await h.request('GET', `/v1/jobs/${id}`);
    return body.status === 'running' && body.attempt === 2;
  });
  assert.equal((await h.request('POST', `/v1/jobs/${id}/cancel`)).status, 202);
  assert.equal((await waitForJob(h, id, GRACE_MS + MARGIN_MS)).status, 'cancelled');
  assert.deepEqual(await statuses(id), ['queued', 'running', 'paused', 'queued', 'running', 'cancelled']);
});

test('limits.maxRuntimeSeconds ends a job whose step never ends: failed max_runtime, not retried, its child killed', async () => {
  // the least the schema allows: the stuck child computes at full speed until the limit and the grace have passed
  const limit = 1;
  // the limit may pass before the job is seen training: watch every child alive meanwhile
  const watch = watchChildren(process.pid, CHILD);
  const res = await h.request('POST', '/v1/jobs', stuckSpec({ limits: { maxRuntimeSeconds: limit } }));
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const done = await waitForJob(h, res.body.id, limit * 1000 + GRACE_MS + MARGIN_MS);
  const pids = await watch.stop();
  assert.equal(done.status, 'failed');
  assert.equal(done.error.code, 'max_runtime');
  assert.equal(done.error.param, '/limits/maxRuntimeSeconds');
  assert.match(done.error.message, new RegExp(`limits\\.maxRuntimeSeconds \\(${limit} s\\)`));
  assert.equal(done.attempt, 1);
  assert.ok(Date.parse(done.finishedAt) - Date.parse(done.startedAt) < limit * 1000 + GRACE_MS + MARGIN_MS);
  // a failed attempt's child is never reused, however it stopped
  assert.ok(pids.size > 0);
  for (const pid of pids) assertGone(pid);
  assert.deepEqual(await statuses(done.id), ['queued', 'running', 'failed']);
  await assertNextJobAsTwin();
});

test('a spec asking for more than JOB_MAX_RUNTIME_SECONDS is refused with a pointer to the field', async () => {
  const res = await h.request('POST', '/v1/jobs', trainSpec(data, { limits: { maxRuntimeSeconds: h.config.jobMaxRuntimeSeconds + 1 } }));
  assert.equal(res.status, 400);
  assert.equal(res.body.errors[0].pointer, '/limits/maxRuntimeSeconds');
  assert.match(res.body.errors[0].detail, /JOB_MAX_RUNTIME_SECONDS/);
});
