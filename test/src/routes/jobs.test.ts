import assert from 'node:assert/strict';
import { truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadMnist } from '../../../src/artifacts/builtin-datasets.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';

let h: Harness;
let data: { train: string; test: string };

before(async () => {
  h = await startHarness();
  data = await registerMnist(h);
});
after(() => h?.stop());

describe('job lifecycle', () => {
  let job: any;
  let finished: any;

  before(async () => {
    const res = await h.request('POST', '/v1/jobs', trainSpec(data));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    job = res.body;
    finished = await waitForJob(h, job.id);
  });

  test('creation answers 202 with a queued job and where to find it', () => {
    assert.equal(job.status, 'queued');
    assert.equal(job.attempt, 0);
    assert.equal(job.object, 'job');
    assert.match(job.id, /^job_[0-9a-f]{24}$/);
  });

  test('the job trains to success and reports what it did', () => {
    assert.equal(finished.status, 'succeeded', JSON.stringify(finished.error));
    assert.equal(finished.attempt, 1);
    assert.ok(['wasm', 'cpu', 'tensorflow'].includes(finished.backend), `backend ${finished.backend}`);
    assert.deepEqual(finished.progress, { epoch: 2, epochs: 2, step: 32, steps: 32 });
    const m = finished.result.metrics;
    assert.ok(m.testAccuracy > 0.6, `testAccuracy ${m.testAccuracy}`);
    assert.ok(m.testLoss > 0 && Number.isFinite(m.testLoss));
    assert.equal(finished.result.modelId, `mdl_${job.id.slice(4)}`);
    for (const k of ['loss', 'accuracy', 'samplesPerSecond', 'epochSeconds']) assert.equal(typeof finished.metrics[k], 'number', k);
    assert.ok(finished.startedAt && finished.finishedAt);
  });

  test('the event log is gap-free and ordered, from queued to succeeded', async () => {
    const { body } = await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`);
    const events = body.data;
    assert.deepEqual(
      events.map((e: any) => e.seq),
      events.map((_: any, i: number) => i + 1),
    );
    const statuses = events.filter((e: any) => e.type === 'status').map((e: any) => e.data.status);
    assert.deepEqual(statuses, ['queued', 'running', 'succeeded']);
    const metrics = events.filter((e: any) => e.type === 'metrics');
    assert.deepEqual(
      metrics.map((e: any) => e.data.epoch),
      [1, 2],
    );
    assert.ok(metrics[1].data.loss < metrics[0].data.loss + 0.05, 'loss should not grow');
    assert.equal(events.filter((e: any) => e.type === 'checkpoint').length, 2);
    assert.ok(events.some((e: any) => e.type === 'progress'));
    // paging walks the same log
    const first = await h.request('GET', `/v1/jobs/${job.id}/events?limit=2`);
    assert.equal(first.body.hasMore, true);
    const second = await h.request('GET', `/v1/jobs/${job.id}/events?limit=2&after=${first.body.nextCursor}`);
    assert.deepEqual(
      second.body.data.map((e: any) => e.seq),
      [3, 4],
    );
  });

  test('one checkpoint per epoch', async () => {
    const { body } = await h.request('GET', `/v1/jobs/${job.id}/checkpoints`);
    assert.deepEqual(
      body.data.map((c: any) => c.epoch),
      [1, 2],
    );
    assert.equal(typeof body.data[0].metrics.loss, 'number');
  });

  test('the model is listed with its lineage and downloadable', async () => {
    const { status, body } = await h.request('GET', `/v1/models/${finished.result.modelId}`);
    assert.equal(status, 200);
    assert.equal(body.jobId, job.id);
    assert.equal(body.baseModelId, null);
    assert.deepEqual(body.datasetIds, data);
    assert.deepEqual(body.inputShape, [784]);
    const mj = await h.request('GET', body.files.modelJson);
    assert.equal(mj.status, 200);
    assert.deepEqual(mj.body.userDefinedMetadata.tfjsAdapt.preprocessing, { scale: 2 / 255, offset: -1 });
    const w = await fetch(h.url + body.files.weights);
    assert.equal(w.status, 200);
    assert.equal((await w.arrayBuffer()).byteLength, (784 * 32 + 32 + 32 * 10 + 10) * 4);
  });

  test('the downloaded model, loaded by tf.loadLayersModel over HTTP, reproduces the reported test accuracy', async () => {
    const tf = await import('@tensorflow/tfjs');
    await selectBackend();
    const model = await tf.loadLayersModel(`${h.url}/v1/models/${finished.result.modelId}/model.json`);
    const meta = (model.getUserDefinedMetadata() as any).tfjsAdapt;
    assert.deepEqual(meta.inputShape, [784]);
    assert.equal(meta.output, 'logits');
    const test = await loadMnist('test', 500);
    const { scale, offset } = meta.preprocessing;
    const correct = tf.tidy(() => {
      const x = tf.tensor2d(
        Float32Array.from(test.features, (v) => v * scale + offset),
        [500, 784],
      );
      const predicted = (model.predict(x) as import('@tensorflow/tfjs').Tensor).argMax(-1);
      return predicted.equal(tf.tensor1d(test.labels, 'int32')).sum().dataSync()[0];
    });
    model.dispose();
    assert.equal(correct / 500, finished.result.metrics.testAccuracy);
  });

  // order and paging: jobs-list.test.ts
  test('a finished job is found by its status and type, and not by others', async () => {
    const all = await h.request('GET', '/v1/jobs?status=succeeded&type=train');
    assert.ok(all.body.data.some((j: any) => j.id === job.id));
    assert.ok(all.body.data.every((j: any) => j.status === 'succeeded'));
    const none = await h.request('GET', '/v1/jobs?status=failed&type=finetune');
    assert.ok(!none.body.data.some((j: any) => j.id === job.id));
  });
});

test('pretrain, then fine-tune from the trained model', async () => {
  const pre = await waitForJob(
    h,
    (
      await h.request(
        'POST',
        '/v1/jobs',
        trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } } }),
      )
    ).body.id,
  );
  assert.equal(pre.status, 'succeeded');
  const spec = {
    type: 'finetune',
    model: { base: pre.result.modelId },
    strategy: { kind: 'full' },
    data,
    hyperparameters: { epochs: 2, batchSize: 64, seed: 1, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } },
  };
  const res = await h.request('POST', '/v1/jobs', spec);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const ft = await waitForJob(h, res.body.id);
  assert.equal(ft.status, 'succeeded', JSON.stringify(ft.error));
  assert.ok(
    ft.result.metrics.testAccuracy >= pre.result.metrics.testAccuracy - 0.02,
    `fine-tuned ${ft.result.metrics.testAccuracy} vs pretrained ${pre.result.metrics.testAccuracy}`,
  );
  const model = (await h.request('GET', `/v1/models/${ft.result.modelId}`)).body;
  assert.equal(model.baseModelId, pre.result.modelId);
  assert.equal(model.jobId, ft.id);
});

test('a job whose data turns out unusable fails at once with a code and a message', async () => {
  const ds = await h.request('POST', '/v1/datasets', { name: 'to-corrupt', source: { builtin: 'mnist', split: 'train', limit: 300 } });
  truncateSync(join(h.dataDir, 'artifacts', 'datasets', ds.body.id, 'features.bin'), 1000);
  const res = await h.request('POST', '/v1/jobs', trainSpec({ train: ds.body.id }));
  const job = await waitForJob(h, res.body.id);
  assert.equal(job.status, 'failed');
  assert.equal(job.error.code, 'dataset_corrupt');
  assert.match(job.error.message, /features/);
  assert.equal(job.error.param, '/data/train');
  assert.equal(job.attempt, 1, 'bad data is not retried');
});

test('Idempotency-Key returns the first job for a repeated request, 409 for a different one', async () => {
  const spec = trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 3, optimizer: { name: 'adam', learningRate: 0.001 } } });
  const a = await h.request('POST', '/v1/jobs', spec, { 'idempotency-key': 'k-1' });
  const b = await h.request('POST', '/v1/jobs', spec, { 'idempotency-key': 'k-1' });
  assert.equal(a.status, 202);
  assert.equal(b.status, 202);
  assert.equal(b.body.id, a.body.id);
  assert.equal(b.headers.get('idempotent-replayed'), 'true');
  const c = await h.request('POST', '/v1/jobs', { ...spec, metadata: { other: 'x' } }, { 'idempotency-key': 'k-1' });
  assert.equal(c.status, 409);
  // the job itself is not what this test is about: stop it rather than train it to its end
  await h.request('POST', `/v1/jobs/${a.body.id}/cancel`);
  await waitForJob(h, a.body.id);
});

test('cancel: a queued job at once and for good, a running one within a batch', async () => {
  const long = trainSpec(data, { hyperparameters: { epochs: 200, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } } });
  const running = (await h.request('POST', '/v1/jobs', long)).body;
  const queued = (await h.request('POST', '/v1/jobs', long)).body;
  await waitFor('the first job to make progress', async () => (await h.request('GET', `/v1/jobs/${running.id}`)).body.progress);

  const c1 = await h.request('POST', `/v1/jobs/${queued.id}/cancel`);
  assert.equal(c1.status, 200);
  assert.equal(c1.body.status, 'cancelled');

  const c2 = await h.request('POST', `/v1/jobs/${running.id}/cancel`);
  assert.equal(c2.status, 202);
  assert.equal(c2.body.cancelRequested, true);
  const stopped = await waitForJob(h, running.id, 30_000);
  assert.equal(stopped.status, 'cancelled');
  assert.ok(stopped.progress.epoch < 200);

  await new Promise((r) => setTimeout(r, 1000));
  const never = (await h.request('GET', `/v1/jobs/${queued.id}`)).body;
  assert.equal(never.status, 'cancelled');
  assert.equal(never.attempt, 0, 'a cancelled queued job never runs');
  const again = await h.request('POST', `/v1/jobs/${queued.id}/cancel`);
  assert.equal(again.status, 409);
  assert.equal(again.headers.get('content-type'), 'application/problem+json; charset=utf-8');
});
