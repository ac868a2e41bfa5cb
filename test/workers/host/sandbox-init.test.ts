import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { childProcesses } from '../../helpers/processes.js';
import { registerMnist, startHarness, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';

let h: Harness | undefined;
after(async () => {
  await h?.stop();
});

test('a training child killed while it starts fails its attempt, and the job is retried instead of hanging', async () => {
  h = await startHarness({ JOB_BACKOFF_MS: '100' });
  const data = await registerMnist(h, 500, 100);
  // the harness runs the worker host in this process: the training children are ours, forked from BullMQ's main.js
  const before = new Set(childProcesses(process.pid, 'bullmq'));
  const job = (await h.request('POST', '/v1/jobs', trainSpec(data))).body;
  // loading tfjs takes the child a second or so: found within milliseconds, it is still starting
  let killed: number | undefined;
  for (let i = 0; i < 2000 && killed === undefined; i++) {
    killed = childProcesses(process.pid, 'bullmq').find((pid) => !before.has(pid));
    if (killed === undefined) await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(killed, 'a training child was started');
  process.kill(killed, 'SIGKILL');

  const done = await waitForJob(h, job.id, 60_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(done.attempt, 2);
  const events = (await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data;
  const retry = events.findIndex((e: any) => e.data.retry);
  assert.ok(retry > 0, 'the first attempt failed and was retried');
  assert.equal(events[retry].data.error.code, 'worker_crashed');
  assert.ok(!events.slice(0, retry).some((e: any) => e.data.backend), 'the first attempt died before training began');
});
