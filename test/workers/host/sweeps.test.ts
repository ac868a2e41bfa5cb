import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { registerMnist, startHarness, trainSpec, waitFor, type Harness } from '../../helpers/harness.js';
import { startWebhookHarness, type WebhookReceiver } from '../../helpers/webhook-receiver.js';

/**
 * Sweeps end to end: a real worker host runs the trials (tiny MLPs on a slice of MNIST, one epoch),
 * launches the next as each ends, ends the sweep with its best and calls its webhook; cancel stops
 * live trials; a restart of the worker host in the middle loses nothing.
 */
let h: Harness;
let data: { train: string; test: string };
let receiver: WebhookReceiver;
let stop = async () => {};

before(async () => ({ h, data, receiver, stop } = await startWebhookHarness({ examples: 300 })));
after(() => stop());

const ENDED = ['succeeded', 'failed', 'cancelled'];
const template = (epochs = 1) => trainSpec(data, { hyperparameters: { epochs, batchSize: 64, seed: 3, optimizer: { name: 'adam', learningRate: 0.003 } } });
const waitForSweep = (harness: Pick<Harness, 'request'>, id: string, timeoutMs = 300_000) =>
  waitFor(
    `sweep ${id} to end`,
    async () => {
      const s = (await harness.request('GET', `/v1/sweeps/${id}`)).body;
      return s.status !== 'running' && s;
    },
    timeoutMs,
  );

describe('a grid sweep with a worker', () => {
  test('runs its trials as jobs, at most maxParallel at once, ends with the best and why, and calls its webhook', async () => {
    const res = await h.request('POST', '/v1/sweeps', {
      template: template(),
      parameters: { '/hyperparameters/optimizer/learningRate': { values: [0.0001, 0.003, 0.01] } },
      objective: { metric: 'testAccuracy' },
      algorithm: 'grid',
      maxParallel: 2,
      webhook: { url: `http://${receiver.host}/sweep`, secret: 'sweep-hook-secret' },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const done = await waitForSweep(h, res.body.id);
    assert.doesNotMatch(JSON.stringify([res.body, done, (await h.request('GET', '/v1/sweeps')).body]), /sweep-hook-secret/, 'the secret is write-only');
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.deepEqual(
      done.trials.map((t: any) => t.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    const values = done.trials.map((t: any) => t.objective.value);
    assert.equal(done.best.objective.value, Math.max(...values));
    assert.equal(done.best.objective.metric, 'testAccuracy');
    assert.equal(done.best.objective.epoch, 1);
    assert.match(done.best.reason, /has the highest testAccuracy/);
    for (const t of done.trials) {
      const job = (await h.request('GET', `/v1/jobs/${t.jobId}`)).body;
      assert.equal(job.sweepId, done.id);
      assert.equal(job.result.metrics.testAccuracy, t.objective.value);
    }
    // never more than maxParallel live: the third launched only after one of the first two ended
    const third = (await h.request('GET', `/v1/jobs/${done.trials[2].jobId}`)).body;
    const firstEnd = Math.min(
      ...(await Promise.all(done.trials.slice(0, 2).map(async (t: any) => Date.parse((await h.request('GET', `/v1/jobs/${t.jobId}`)).body.finishedAt)))),
    );
    assert.ok(Date.parse(third.createdAt) >= firstEnd, 'trial 2 was created after trial 0 or 1 ended');
    const hook = await waitFor('the sweep webhook', async () => receiver.received.map((d) => JSON.parse(d.body)).find((b) => b.sweepId === done.id));
    assert.deepEqual({ type: hook.type, status: hook.status, best: hook.best.jobId }, { type: 'sweep.succeeded', status: 'succeeded', best: done.best.jobId });
  });

  test('cancel stops the running trials and launches no more', async () => {
    const res = await h.request('POST', '/v1/sweeps', {
      template: template(200),
      parameters: { '/hyperparameters/seed': { values: [1, 2, 3] } },
      objective: { metric: 'accuracy' },
      algorithm: 'grid',
      maxParallel: 2,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id;
    await waitFor('a trial to run', async () => (await h.request('GET', `/v1/sweeps/${id}`)).body.trials.some((t: any) => t.status === 'running'));
    const cancelled = await h.request('POST', `/v1/sweeps/${id}/cancel`);
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    const settled = await waitFor('the trials to stop', async () => {
      const s = (await h.request('GET', `/v1/sweeps/${id}`)).body;
      return s.trials.every((t: any) => t.status === 'pending' || ENDED.includes(t.status)) && s;
    });
    assert.equal(settled.status, 'cancelled');
    assert.equal(settled.trials[2].status, 'pending', 'nothing launched after the cancel');
    assert.ok(
      settled.trials.slice(0, 2).every((t: any) => t.status === 'cancelled'),
      JSON.stringify(settled.trials),
    );
  });
});

describe('ASHA early termination with a worker', () => {
  test('a trial below the cutoff at a rung is stopped there; the first trial, with nothing to compare, runs to its end', async () => {
    // one at a time, so that the second trial meets the first's whole curve at every rung whatever the machine's speed;
    // the second has epochs enough that it cannot end by itself before the stop decided at epoch 1 reaches it
    const hp = (epochs: number, learningRate: number) => ({ epochs, batchSize: 64, seed: 3, optimizer: { name: 'adam', learningRate } });
    const res = await h.request('POST', '/v1/sweeps', {
      template: template(3),
      parameters: { '/hyperparameters': { values: [hp(3, 0.003), hp(500, 1e-7)] } },
      objective: { metric: 'loss' },
      algorithm: 'grid',
      maxParallel: 1,
      earlyTermination: { kind: 'asha', minEpochs: 1, reductionFactor: 2 },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const done = await waitForSweep(h, res.body.id);
    const [first, second] = done.trials;
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    assert.equal(first.stopped, null);
    // lr 1e-7 leaves the loss near its initial value, far above the first trial's after its first epoch
    assert.equal(second.status, 'cancelled', JSON.stringify(second));
    assert.equal(second.stopped.epoch, 1);
    assert.match(second.stopped.reason, /its value at epoch 1 \(a rung\), .* is above .*, the cutoff of the best 1\/2 of 1 other trials at that rung \(ASHA\)/);
    assert.equal(done.best.jobId, first.jobId);
  });
});

describe('a worker-host restart in the middle of a sweep', () => {
  test('the sweep goes on from the store and finishes', async () => {
    const first = await startHarness();
    let second: Harness | undefined;
    try {
      const d = await registerMnist(first, 300, 100);
      const res = await first.request('POST', '/v1/sweeps', {
        template: trainSpec(d, { hyperparameters: { epochs: 2, batchSize: 64, seed: 3, optimizer: { name: 'adam', learningRate: 0.003 } } }),
        parameters: { '/hyperparameters/seed': { values: [1, 2, 3] } },
        objective: { metric: 'testAccuracy' },
        algorithm: 'grid',
        maxParallel: 1,
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const id = res.body.id;
      await waitFor('the first trial to start', async () => (await first.request('GET', `/v1/sweeps/${id}`)).body.trials[0].status !== 'queued');
      await first.service.stop();
      second = await startHarness({}, { dataDir: first.dataDir, redis: first.redis });
      const done = await waitForSweep(second, id);
      assert.equal(done.status, 'succeeded', JSON.stringify(done));
      assert.deepEqual(
        done.trials.map((t: any) => t.status),
        ['succeeded', 'succeeded', 'succeeded'],
      );
      assert.ok(done.best);
    } finally {
      if (second) await second.stop();
      else await first.stop();
    }
  });
});
