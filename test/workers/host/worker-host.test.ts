import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';

let firstHost: Harness | undefined;
let firstStopped = false;
let second: Harness | undefined;
// whatever failed: stop what was started (a live redis-server or worker host keeps the file running)
after(async () => {
  if (second) await second.stop();
  else if (firstHost) {
    if (!firstStopped) await firstHost.service.stop();
    await firstHost.redis.stop();
    rmSync(firstHost.dataDir, { recursive: true, force: true });
  }
});

test('SIGTERM-style shutdown checkpoints a running job and hands it back; the next worker resumes it from that checkpoint', async () => {
  const first = await startHarness();
  firstHost = first;
  // what is checked is the hand-over, not learning: a small slice, and so many epochs that no machine
  // finishes the job before the host is told to stop (the job is cancelled once the next host resumed it)
  const data = await registerMnist(first, 1000, 100);
  const spec = trainSpec(data, { hyperparameters: { epochs: 1000, batchSize: 32, seed: 4, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } } });
  const job = (await first.request('POST', '/v1/jobs', spec)).body;
  await waitFor('the job to make progress', async () => (await first.request('GET', `/v1/jobs/${job.id}`)).body.progress?.epoch >= 2);

  const stopping = Date.now();
  await first.service.stop();
  firstStopped = true;
  // the host's own deadline: STOP_GRACE_MS (5 s by default) for the job, then close()'s 10 s before it
  // closes by force; past it (with 5 s for the rest of the service), stopping hung
  assert.ok(Date.now() - stopping < 20_000, 'the host stopped within its deadline');

  second = await startHarness({}, { dataDir: first.dataDir, redis: first.redis });
  const h = second;
  const events = async () => (await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data;
  const handedBack = (await events()).find((e: any) => e.data.handedBack);
  assert.ok(handedBack, 'an event says the job was handed back');
  const checkpointsAtStop = (await h.request('GET', `/v1/jobs/${job.id}/checkpoints`)).body.data;
  const last = checkpointsAtStop.at(-1);
  assert.ok(last, 'the stopped attempt left a checkpoint');
  // 300 s: a bound for a hang, not for how fast the machine trains
  const resumed = await waitFor(
    'the next host to resume the job',
    async () => (await events()).find((e: any) => e.type === 'log' && /^resuming from checkpoint/.test(e.data.message)),
    300_000,
  );
  assert.match(resumed.data.message, new RegExp(`\\(step ${last.step} of `), 'it resumed from the checkpoint the shutdown wrote');
  await waitFor(
    'the resumed attempt to checkpoint past it',
    async () => (await h.request('GET', `/v1/jobs/${job.id}/checkpoints`)).body.data.some((c: any) => c.attempt === 2 && c.step > last.step),
    300_000,
  );
  assert.equal((await h.request('POST', `/v1/jobs/${job.id}/cancel`)).status, 202);
  const done = await waitForJob(h, job.id);
  assert.equal(done.status, 'cancelled', JSON.stringify(done.error));
  assert.equal(done.attempt, 2);
  const checkpoints = (await h.request('GET', `/v1/jobs/${job.id}/checkpoints`)).body.data;
  // a shutdown checkpoints mid-epoch: that epoch then has two checkpoints, so forward is by step
  const steps = checkpoints.map((c: any) => c.step);
  assert.ok(
    steps.every((s: number, i: number) => i === 0 || s > steps[i - 1]),
    `checkpoints only move forward: steps ${steps.join(', ')}`,
  );
  const statuses = (await events()).filter((e: any) => e.type === 'status').map((e: any) => e.data.status);
  assert.deepEqual(statuses, ['queued', 'running', 'queued', 'running', 'cancelled']);
  rmSync(first.dataDir, { recursive: true, force: true });
});
