import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';

/** Admission by cost (JOB_MAX_MEMORY_BYTES, JOB_MAX_FLOPS), the dry run, and the active-job quota with paused jobs. */
let h: Harness;
let data: { train: string; test: string };

before(async () => {
  h = await startHarness({ JOB_MAX_FLOPS: '1e12', MAX_ACTIVE_JOBS_PER_TENANT: '2' });
  data = await registerMnist(h, 2000, 200);
});
after(() => h?.stop());

function assertTooLarge(res: { status: number; headers: Headers; body: any }, pointer: string, limit: RegExp): string {
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(res.body.type, 'urn:tfjs-adapt:problem:job_too_large');
  const error = res.body.errors.find((e: any) => e.pointer === pointer);
  assert.ok(error, `expected an error at ${pointer}, got ${JSON.stringify(res.body.errors)}`);
  assert.match(error.detail, limit);
  return error.detail;
}

const jobCount = async () => (await h.request('GET', '/v1/jobs?limit=200')).body.data.length;

describe('admission by cost', () => {
  test('a dry run validates and estimates, creates nothing, and gives the estimate the job then shows', async () => {
    // this job trains to its end: a small set of its own, not the 2000 examples the FLOPs limit below needs
    const small = await registerMnist(h, 300, 100);
    const before = await jobCount();
    const dry = await h.request('POST', '/v1/jobs?dryRun=true', trainSpec(small));
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.object, 'job_estimate');
    const e = dry.body.estimate;
    assert.equal(e.parameters, 784 * 32 + 32 + 32 * 10 + 10);
    assert.equal(e.memoryBytes, e.parameterBytes + e.optimizerStateBytes + e.activationBytes + e.datasetBytes);
    assert.equal(e.stepsPerEpoch, Math.ceil(300 / 64));
    assert.ok(e.flops > 2 * e.flopsPerEpoch, 'two epochs and the test set');
    assert.deepEqual(dry.body.limits, { maxMemoryBytes: 2 * 1024 ** 3, maxFlops: 1e12 });
    assert.equal(await jobCount(), before, 'a dry run creates no job');
    // a dry run of an invalid spec answers what the create would
    const bad = await h.request('POST', '/v1/jobs?dryRun=true', trainSpec({ train: 'ds_nope' }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].pointer, '/data/train');

    const created = await h.request('POST', '/v1/jobs', trainSpec(small));
    assert.equal(created.status, 202);
    assert.deepEqual(created.body.estimate, e);
    const done = await waitForJob(h, created.body.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.deepEqual(done.estimate, e, 'the job keeps its estimate');
  });

  test('a batch too large for memory points at batchSize with the estimate, the limit and the largest batch that fits', async () => {
    // a CNN of 512 filters without pooling at batch 8192 (15 GiB): such jobs crashed the wasm child before admission;
    // its evaluation batches shrink to fit as its training batches do, so some batch size fits
    const spec = trainSpec(data, {
      model: { architecture: { kind: 'cnn', filters: [512], pooling: 'none', hidden: [16] } },
      hyperparameters: { epochs: 1, batchSize: 8192, optimizer: { name: 'sgd', learningRate: 0.01 } },
    });
    const before = await jobCount();
    const detail = assertTooLarge(await h.request('POST', '/v1/jobs', spec), '/hyperparameters/batchSize', /JOB_MAX_MEMORY_BYTES/);
    assert.match(detail, /is 8192: .*peak memory is [\d.]+ (GiB|TiB)/);
    assert.match(detail, /over the limit of 2\.00 GiB/);
    const fit = Number(/at most (\d+)/.exec(detail)?.[1]);
    assert.ok(fit >= 1 && fit < 8192, detail);
    assertTooLarge(await h.request('POST', '/v1/jobs?dryRun=true', spec), '/hyperparameters/batchSize', /JOB_MAX_MEMORY_BYTES/);
    assert.equal(await jobCount(), before, 'nothing was created');

    const fits = await h.request('POST', '/v1/jobs?dryRun=true', { ...spec, hyperparameters: { ...spec.hyperparameters, batchSize: fit } });
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
    assert.ok(fits.body.estimate.memoryBytes <= 2 * 1024 ** 3);
    const over = await h.request('POST', '/v1/jobs?dryRun=true', { ...spec, hyperparameters: { ...spec.hyperparameters, batchSize: fit + 1 } });
    assert.equal(over.status, 400, 'the answer named the largest batch that fits');
  });

  test('a model too large at any batch size points at its layers', async () => {
    const spec = trainSpec(data, {
      model: { architecture: { kind: 'mlp', hidden: [4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096] } },
      hyperparameters: { epochs: 1000, batchSize: 8192, optimizer: { name: 'adam', learningRate: 0.001 } },
    });
    const res = await h.request('POST', '/v1/jobs', spec);
    assertTooLarge(res, '/model/architecture/hidden', /too large for any batch size: .*JOB_MAX_MEMORY_BYTES/);
    // with this service's JOB_MAX_FLOPS of 1e12, not even one epoch of it fits: the model is to blame for that too
    assert.ok(
      res.body.errors.some((e: any) => e.pointer === '/model/architecture/hidden' && /even one epoch .*JOB_MAX_FLOPS/.test(e.detail)),
      JSON.stringify(res.body.errors),
    );
  });

  test('too much work points at epochs with how many fit', async () => {
    const spec = trainSpec(data, {
      model: { architecture: { kind: 'mlp', hidden: [256] } },
      hyperparameters: { epochs: 1000, batchSize: 64, optimizer: { name: 'sgd', learningRate: 0.01 } },
    });
    const detail = assertTooLarge(await h.request('POST', '/v1/jobs', spec), '/hyperparameters/epochs', /over the limit of 1\.00e\+12 FLOPs \(JOB_MAX_FLOPS\)/);
    const epochs = Number(/at most (\d+) epochs/.exec(detail)?.[1]);
    assert.ok(epochs >= 1 && epochs < 1000, detail);
    const fits = await h.request('POST', '/v1/jobs?dryRun=true', { ...spec, hyperparameters: { ...spec.hyperparameters, epochs } });
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
    assert.ok(fits.body.estimate.flops <= 1e12);
  });
});

describe('the active-job quota counts paused jobs', () => {
  test('pause, create, resume cannot get around MAX_ACTIVE_JOBS_PER_TENANT, and resume checks it', async () => {
    const long = trainSpec(data, { hyperparameters: { epochs: 200, batchSize: 64, optimizer: { name: 'sgd', learningRate: 0.01 } } });
    const running = (await h.request('POST', '/v1/jobs', long)).body;
    const second = (await h.request('POST', '/v1/jobs', long)).body;
    await waitFor('the first job to run', async () => (await h.request('GET', `/v1/jobs/${running.id}`)).body.status === 'running');
    assert.equal((await h.request('POST', `/v1/jobs/${second.id}/pause`)).status, 200);

    const third = await h.request('POST', '/v1/jobs', trainSpec(data));
    assert.equal(third.status, 429, JSON.stringify(third.body));
    assert.equal(third.body.type, 'urn:tfjs-adapt:problem:too_many_jobs');
    assert.match(third.body.detail, /already has 2 unfinished jobs \(queued, running or paused; MAX_ACTIVE_JOBS_PER_TENANT is 2\)/);

    // resuming stays within the quota: the paused job was counted all along
    const resumed = await h.request('POST', `/v1/jobs/${second.id}/resume`);
    assert.equal(resumed.status, 202, JSON.stringify(resumed.body));
    assert.ok(resumed.body.estimate, 'resume admits the job again and records its estimate');
    for (const job of [running, second]) await h.request('POST', `/v1/jobs/${job.id}/cancel`);
    for (const job of [running, second]) assert.equal((await waitForJob(h, job.id)).status, 'cancelled');
  });

  test('a resume beyond a lowered quota is refused with 429 and the job stays paused', async () => {
    const long = trainSpec(data, { hyperparameters: { epochs: 200, batchSize: 64, optimizer: { name: 'sgd', learningRate: 0.01 } } });
    const queued = [(await h.request('POST', '/v1/jobs', long)).body, (await h.request('POST', '/v1/jobs', long)).body];
    for (const job of queued) assert.ok([200, 202].includes((await h.request('POST', `/v1/jobs/${job.id}/pause`)).status));
    for (const job of queued) await waitFor(`${job.id} to pause`, async () => (await h.request('GET', `/v1/jobs/${job.id}`)).body.status === 'paused');
    // the operator lowers the quota: restarted on the same data and Redis
    await h.service.stop();
    const lowered = await startHarness({ JOB_MAX_FLOPS: '1e12', MAX_ACTIVE_JOBS_PER_TENANT: '1' }, { dataDir: h.dataDir, redis: h.redis });
    h = lowered;
    const res = await h.request('POST', `/v1/jobs/${queued[0].id}/resume`);
    assert.equal(res.status, 429, JSON.stringify(res.body));
    assert.equal(res.body.type, 'urn:tfjs-adapt:problem:too_many_jobs');
    assert.match(res.body.detail, new RegExp(`job ${queued[0].id} stays paused`));
    assert.equal((await h.request('GET', `/v1/jobs/${queued[0].id}`)).body.status, 'paused');
    for (const job of queued) assert.equal((await h.request('POST', `/v1/jobs/${job.id}/cancel`)).status, 200);
    assert.equal((await h.request('POST', '/v1/jobs?dryRun=true', trainSpec(data))).status, 200, 'a dry run counts toward no quota');
  });
});
