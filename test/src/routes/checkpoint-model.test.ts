import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { registerMnist, startHarness, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';

const A = 'token-alpha-0123456789';
const B = 'token-beta-0123456789';
const as = (token: string) => ({ authorization: `Bearer ${token}` });

let h: Harness;
let job: any;

before(async () => {
  h = await startHarness({ API_KEYS: `alpha:${A},beta:${B}` });
  const request = (method: string, path: string, body?: unknown) => h.request(method, path, body, as(A));
  const data = await registerMnist({ request }, 600, 200);
  job = await waitForJob({ ...h, request: (m, p, b) => h.request(m, p, b, as(A)) }, (await request('POST', '/v1/jobs', trainSpec(data))).body.id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
});
after(() => h?.stop());

test('a checkpoint becomes a model that is stored, listed and answers predictions', async () => {
  const checkpoints = (await h.request('GET', `/v1/jobs/${job.id}/checkpoints`, undefined, as(A))).body.data;
  const first = checkpoints.find((c: any) => c.epoch === 1);
  const res = await h.request('POST', `/v1/jobs/${job.id}/checkpoints/1/model`, undefined, as(A));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.headers.get('location'), `/v1/models/${res.body.id}`);
  const m = res.body;
  assert.notEqual(m.id, job.result.modelId);
  assert.equal(m.status, 'ready');
  assert.equal(m.jobId, job.id);
  assert.deepEqual(m.inputShape, [784]);
  assert.deepEqual(m.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.equal(m.metrics.epoch, 1);
  assert.equal(m.metrics.step, first.step);
  assert.equal(m.metrics.loss, first.metrics.loss);
  assert.deepEqual(m.datasetIds, job.spec.data);

  // the epoch-1 weights, not the final model's
  const [copy, final] = await Promise.all(
    [m.id, job.result.modelId].map(async (id) => new Uint8Array(await (await fetch(`${h.url}/v1/models/${id}/weights.bin`, { headers: as(A) })).arrayBuffer())),
  );
  assert.equal(copy.length, final.length);
  assert.notDeepEqual(copy, final);

  const listed = (await h.request('GET', '/v1/models', undefined, as(A))).body.data.map((x: any) => x.id);
  assert.ok(listed.includes(m.id));
  const predicted = await h.request('POST', `/v1/models/${m.id}/predict`, { examples: [new Array(784).fill(0), new Array(784).fill(255)], topK: 10 }, as(A));
  assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
  for (const p of predicted.body.predictions) {
    assert.equal(p.classes.length, 10);
    assert.ok(Math.abs(p.classes.reduce((s: number, c: any) => s + c.probability, 0) - 1) < 1e-5);
  }
});

test('an epoch without a checkpoint is a 404 naming the epochs that have one; another tenant cannot see the job', async () => {
  const missing = await h.request('POST', `/v1/jobs/${job.id}/checkpoints/9/model`, undefined, as(A));
  assert.equal(missing.status, 404);
  assert.equal(missing.body.type, 'urn:tfjs-adapt:problem:checkpoint_not_found');
  assert.deepEqual(missing.body.errors, [{ pointer: '/epoch', detail: 'expected one of 1, 2' }]);

  const theirs = await h.request('POST', `/v1/jobs/${job.id}/checkpoints/1/model`, undefined, as(B));
  assert.equal(theirs.status, 404);
  assert.equal(theirs.body.type, 'urn:tfjs-adapt:problem:not_found');
  // nor can it predict with the job's model
  const predict = await h.request('POST', `/v1/models/${job.result.modelId}/predict`, { examples: [new Array(784).fill(0)] }, as(B));
  assert.equal(predict.status, 404);

  const bad = await h.request('POST', `/v1/jobs/${job.id}/checkpoints/one/model`, undefined, as(A));
  assert.equal(bad.status, 400);
});

test('a checkpoint whose files are gone from disk is a 409 checkpoint_gone, and no model is made', async () => {
  const two = (await h.request('GET', `/v1/jobs/${job.id}/checkpoints`, undefined, as(A))).body.data.find((c: any) => c.epoch === 2);
  const name = `epoch-0002-step-${String(two.step).padStart(8, '0')}`;
  rmSync(join(h.dataDir, 'artifacts', 'jobs', job.id, 'checkpoints', name, 'weights.bin'));
  const before = (await h.request('GET', '/v1/models?limit=100', undefined, as(A))).body.data.length;
  const res = await h.request('POST', `/v1/jobs/${job.id}/checkpoints/2/model`, undefined, as(A));
  assert.equal(res.status, 409, JSON.stringify(res.body));
  assert.equal(res.body.type, 'urn:tfjs-adapt:problem:checkpoint_gone');
  assert.equal(res.body.detail, `the checkpoint of epoch 2 (step ${two.step}) of job ${job.id} is no longer on disk`);
  assert.equal((await h.request('GET', '/v1/models?limit=100', undefined, as(A))).body.data.length, before);
});
