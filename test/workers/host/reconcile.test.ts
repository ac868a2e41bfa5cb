import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import bullmq = require('bullmq');
import { pino } from 'pino';
import { Artifacts } from '../../../src/artifacts/artifacts.js';
import { createRedis, startRedisServer, type RedisServer } from '../../../src/queue/redis-server.js';
import { resolveTask, type ResolveOptions } from '../../../src/jobs/training-task.js';
import { QUEUE_NAME, TrainingQueue } from '../../../src/queue/training-queue.js';
import { newId } from '../../../src/store/ids.js';
import { openStore } from '../../../src/store/store.js';
import { AttemptRunner } from '../../../workers/host/attempt-runner.js';
import { registerMnist, startHarness, submitAndPause, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';

let second: Harness | undefined;
let third: Harness | undefined;
let fourth: Harness | undefined;
let restarted: RedisServer | undefined;
after(async () => {
  await second?.stop();
  await third?.stop();
  await fourth?.stop();
  await restarted?.stop();
});

test('a job that BullMQ finished while its host died before recording it is recorded by reconciliation, not trained again', async () => {
  const env = { LOCK_DURATION_MS: '1000', RECONCILE_INTERVAL_MS: '200' };
  const first = await startHarness(env);
  const data = await registerMnist(first, 500, 100);
  await first.service.stop();

  // what a host that dies at the wrong moment leaves: the store has the attempt running,
  // BullMQ has it completed (a plain BullMQ worker on the real attempt runner records nothing)
  const store = await openStore({ dataDir: first.dataDir });
  const id = newId('job');
  const spec = trainSpec(data) as ResolveOptions['spec'];
  const artifacts = new Artifacts(first.config.artifactsDir);
  const resolved = await resolveTask(store, artifacts, { jobId: id, spec, tenant: undefined, webhookAllowedHosts: [] });
  assert.ok('task' in resolved);
  await store.jobs.create({ id, spec }, { maxActive: 100 });
  assert.ok(await store.jobs.started(id, 1));
  await store.close();
  const connection = createRedis(first.redis.url, { maxRetriesPerRequest: null });
  const queue = new TrainingQueue(connection, { attempts: 3, backoffMs: 100 });
  await queue.enqueue(resolved.task);
  const { config } = first;
  const runner = new AttemptRunner({
    limits: {
      maxMemoryBytes: config.trainingChildMaxMemoryBytes,
      stopGraceMs: config.stopGraceMs,
      defaultMaxRuntimeSeconds: config.jobDefaultMaxRuntimeSeconds,
      maxRuntimeSeconds: config.jobMaxRuntimeSeconds,
    },
    maxIdle: 1,
    threads: config.trainingThreads,
    artifacts,
    log: pino({ level: 'silent' }),
  });
  const worker = new bullmq.Worker(QUEUE_NAME, runner.process, { connection });
  await new Promise((ok) => worker.once('completed', ok));
  await worker.close();
  await runner.close();
  await queue.close();
  connection.disconnect();

  second = await startHarness(env, { dataDir: first.dataDir, redis: first.redis });
  const done = await waitForJob(second, id, 30_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(done.attempt, 1, 'the result of the finished attempt was recorded, nothing ran again');
  const events = (await second.request('GET', `/v1/jobs/${id}/events?limit=1000`)).body.data;
  assert.deepEqual(
    events.map((e: any) => `${e.type} ${e.data.status ?? ''}`.trim()),
    ['status queued', 'status running', 'status succeeded'],
  );
  assert.equal((await second.request('GET', `/v1/models/${done.result.modelId}`)).status, 200);
});

test('a job resumed while Redis is away is queued by reconciliation once Redis is back, past its finished queue entry', async () => {
  third = await startHarness({ RECONCILE_INTERVAL_MS: '200', LOCK_DURATION_MS: '1000' });
  const h = third;
  const data = await registerMnist(h, 1000, 100);
  // many epochs, so that the resumed attempt is still training when the test cancels it
  const { paused } = await submitAndPause(
    h,
    trainSpec(data, { hyperparameters: { epochs: 400, batchSize: 32, seed: 3, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } } }),
    2,
  );
  const job = { id: paused.id as string };

  const port = Number(new URL(h.redis.url).port);
  await h.redis.stop();
  const resumed = await h.request('POST', `/v1/jobs/${job.id}/resume`);
  assert.equal(resumed.status, 503, JSON.stringify(resumed.body));
  assert.equal((await h.request('GET', `/v1/jobs/${job.id}`)).body.status, 'queued', 'the store has it resumed');
  // the paused attempt's finished entry comes back with Redis (AOF): it must not pass for the job
  restarted = await startRedisServer(join(h.dataDir, 'redis'), { port });

  await waitFor('the resumed job to train again', async () => {
    const j = (await h.request('GET', `/v1/jobs/${job.id}`)).body;
    return j.status === 'running' && j.attempt === 2;
  });
  assert.equal((await h.request('POST', `/v1/jobs/${job.id}/cancel`)).status, 202);
  assert.equal((await waitForJob(h, job.id, 60_000)).status, 'cancelled');
  const statuses = (await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data
    .filter((e: any) => e.type === 'status')
    .map((e: any) => e.data.status);
  assert.deepEqual(statuses, ['queued', 'running', 'paused', 'queued', 'running', 'cancelled']);
});

test("a cancel the worker host's subscriber missed still stops the job: the host finds it in the store on the attempt's next report", async () => {
  fourth = await startHarness();
  const h = fourth;
  const data = await registerMnist(h, 1000, 100);
  // 125 steps an epoch, 1000 epochs: it ends by the cancel, or trains long past every wait here and the test fails
  const spec = trainSpec(data, { hyperparameters: { epochs: 1000, batchSize: 8, seed: 3, optimizer: { name: 'sgd', learningRate: 0.01 } } });
  const job = (await h.request('POST', '/v1/jobs', spec)).body;
  await waitFor('the job to train', async () => (await h.request('GET', `/v1/jobs/${job.id}`)).body.status === 'running');

  // the stop message is published while the host's subscriber is away: disconnected, and no room for a new client
  const admin = createRedis(h.redis.url, { maxRetriesPerRequest: 2 });
  try {
    const lines = async (...args: string[]) =>
      String(await admin.call('CLIENT', 'LIST', ...args))
        .trim()
        .split('\n')
        .filter(Boolean).length;
    const subscribers = await lines('TYPE', 'pubsub');
    assert.ok(subscribers > 0, 'the service subscribes for stop messages');
    await admin.call('CONFIG', 'SET', 'maxclients', String((await lines()) - subscribers));
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    assert.equal((await h.request('POST', `/v1/jobs/${job.id}/cancel`)).status, 202);
  } finally {
    await admin.call('CONFIG', 'SET', 'maxclients', '10000');
    admin.disconnect();
  }
  assert.equal((await waitForJob(h, job.id, 120_000)).status, 'cancelled');
});
