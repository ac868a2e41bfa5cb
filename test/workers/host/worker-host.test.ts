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

test('SIGTERM-style shutdown checkpoints a running job and hands it back; the next worker finishes it', async () => {
  const first = await startHarness();
  firstHost = first;
  // what is checked is the hand-over, not learning: a small slice, with 10 of its 12 epochs (320 steps) left
  // when the host is told to stop, so that even a fast machine is mid-job then
  const data = await registerMnist(first, 1000, 100);
  const spec = trainSpec(data, { hyperparameters: { epochs: 12, batchSize: 32, seed: 4, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } } });
  const job = (await first.request('POST', '/v1/jobs', spec)).body;
  await waitFor('the job to make progress', async () => (await first.request('GET', `/v1/jobs/${job.id}`)).body.progress?.epoch >= 2);

  const stopping = Date.now();
  await first.service.stop();
  firstStopped = true;
  assert.ok(Date.now() - stopping < 10_000, 'the host stopped within its grace period');

  second = await startHarness({}, { dataDir: first.dataDir, redis: first.redis });
  const handedBack = (await second.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data.find((e: any) => e.data.handedBack);
  assert.ok(handedBack, 'an event says the job was handed back');
  const done = await waitForJob(second, job.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(done.attempt, 2);
  const checkpoints = (await second.request('GET', `/v1/jobs/${job.id}/checkpoints`)).body.data;
  // a shutdown checkpoints mid-epoch: that epoch then has two checkpoints, so forward is by step
  const steps = checkpoints.map((c: any) => c.step);
  assert.ok(
    steps.every((s: number, i: number) => i === 0 || s > steps[i - 1]),
    `checkpoints only move forward: steps ${steps.join(', ')}`,
  );
  const statuses = (await second.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data
    .filter((e: any) => e.type === 'status')
    .map((e: any) => e.data.status);
  assert.deepEqual(statuses, ['queued', 'running', 'queued', 'running', 'succeeded']);
  rmSync(first.dataDir, { recursive: true, force: true });
});
