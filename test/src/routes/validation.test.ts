import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApi, type Api } from '../../helpers/api.js';
import { registerMnist, trainSpec } from '../../helpers/harness.js';

let h: Api;
let data: { train: string; test: string };

before(async () => {
  h = await startApi();
  data = await registerMnist(h, 100, 100);
});
after(() => h?.stop());

/** Asserts a problem+json answer whose errors name `pointer`. */
function assertProblem(res: { status: number; headers: Headers; body: any }, status: number, pointer?: string) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(res.body.status, status);
  assert.equal(typeof res.body.title, 'string');
  assert.match(res.body.type, /^urn:tfjs-adapt:problem:/);
  if (pointer) {
    const pointers = (res.body.errors ?? []).map((e: any) => e.pointer);
    assert.ok(pointers.includes(pointer), `expected an error at ${pointer}, got ${JSON.stringify(res.body.errors)}`);
  }
}

const jobCount = async () => (await h.request('GET', '/v1/jobs?limit=200')).body.data.length;

test('a wrong type is a 400 naming the field, never coerced', async () => {
  const spec = trainSpec(data) as any;
  spec.hyperparameters.epochs = '10';
  assertProblem(await h.request('POST', '/v1/jobs', spec), 400, '/hyperparameters/epochs');
});

test('a missing field and an unknown field are named', async () => {
  const spec = trainSpec(data) as any;
  delete spec.hyperparameters.optimizer;
  assertProblem(await h.request('POST', '/v1/jobs', spec), 400, '/hyperparameters/optimizer');
  assertProblem(await h.request('POST', '/v1/jobs', { ...trainSpec(data), colour: 'red' }), 400, '/colour');
});

test('out-of-range and unknown enum values are named', async () => {
  const spec = trainSpec(data) as any;
  spec.hyperparameters.batchSize = 0;
  assertProblem(await h.request('POST', '/v1/jobs', spec), 400, '/hyperparameters/batchSize');
  assertProblem(await h.request('POST', '/v1/jobs', { ...trainSpec(data), type: 'distill' }), 400, '/type');
});

test('an unknown dataset or base model is a 400 naming the field, and nothing is created', async () => {
  const before = await jobCount();
  assertProblem(await h.request('POST', '/v1/jobs', trainSpec({ train: 'ds_nope', test: data.test })), 400, '/data/train');
  assertProblem(await h.request('POST', '/v1/jobs', trainSpec({ train: data.train, test: 'ds_missing' })), 400, '/data/test');
  const ft = { ...trainSpec(data), type: 'finetune', model: { base: 'mdl_unknown' }, strategy: { kind: 'full' } };
  assertProblem(await h.request('POST', '/v1/jobs', ft), 400, '/model/base');
  assert.equal(await jobCount(), before);
});

test('cross-field rules: train needs an architecture, finetune a base, options fit the optimizer', async () => {
  assertProblem(await h.request('POST', '/v1/jobs', { ...trainSpec(data), model: {} }), 400, '/model/architecture');
  assertProblem(await h.request('POST', '/v1/jobs', { ...trainSpec(data), type: 'finetune' }), 400, '/model/base');
  const spec = trainSpec(data) as any;
  spec.hyperparameters.optimizer = { name: 'adam', learningRate: 0.01, momentum: 0.9 };
  assertProblem(await h.request('POST', '/v1/jobs', spec), 400, '/hyperparameters/optimizer/momentum');
});

test('malformed JSON, wrong content type, bad ids and bad paging are 4xx problems', async () => {
  const bad = await h.request('POST', '/v1/jobs', '{"type": ', { 'content-type': 'application/json' });
  assertProblem(bad, 400);
  const text = await fetch(h.url + '/v1/jobs', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
  assert.equal(text.status, 415);
  assertProblem(await h.request('GET', '/v1/jobs/job_doesnotexist'), 404, '/id');
  assertProblem(await h.request('GET', '/v1/jobs/..%2f..%2fetc'), 400, '/id');
  assertProblem(await h.request('GET', '/v1/jobs?limit=0'), 400, '/limit');
  assertProblem(await h.request('GET', '/v1/jobs?status=sleeping'), 400, '/status');
  assertProblem(await h.request('GET', '/v1/models/mdl_x/model.json'), 404);
  assertProblem(await h.request('GET', '/v1/nothing-here'), 404);
});

test('an oversized JSON body is a 413 problem, and nothing is stored', async () => {
  const before = await jobCount();
  const big = { ...trainSpec(data), metadata: { blob: 'x'.repeat(2 * 1024 * 1024) } };
  assertProblem(await h.request('POST', '/v1/jobs', big), 413);
  assert.equal(await jobCount(), before);
});

test('datasets: builtin registration is validated and readable', async () => {
  assertProblem(await h.request('POST', '/v1/datasets', { name: 'x', source: { builtin: 'cifar', split: 'train' } }), 400, '/source/builtin');
  assertProblem(await h.request('POST', '/v1/datasets', { name: 'x', source: { builtin: 'mnist', split: 'val' } }), 400, '/source/split');
  const d = await h.request('GET', `/v1/datasets/${data.train}`);
  assert.equal(d.status, 200);
  assert.equal(d.body.numExamples, 100);
  assert.deepEqual(d.body.featureShape, [784]);
  assert.equal(d.body.numClasses, 10);
  assert.equal(
    d.body.classCounts.reduce((a: number, b: number) => a + b, 0),
    100,
  );
  const list = await h.request('GET', '/v1/datasets?limit=1');
  assert.equal(list.body.data.length, 1);
  assert.equal(list.body.hasMore, true);
  const next = await h.request('GET', `/v1/datasets?limit=1&after=${list.body.nextCursor}`);
  assert.notEqual(next.body.data[0].id, list.body.data[0].id);
});

test('service routes: health names the backend, ready checks redis and the store, OpenAPI is served', async () => {
  const health = await h.request('GET', '/health');
  assert.equal(health.status, 200);
  assert.ok(['wasm', 'cpu', 'tensorflow'].includes(health.body.backend));
  const ready = await h.request('GET', '/ready');
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.body.checks, { redis: 'ok', store: 'ok' });
  const doc = await h.request('GET', '/openapi.json');
  assert.equal(doc.status, 200);
  assert.ok(doc.body.paths['/v1/jobs/{id}/events']);
  assert.equal((await fetch(h.url + '/docs')).status < 400, true);
});
