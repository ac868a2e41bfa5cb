/** Fine-tuning strategies, domain adaptation and evaluation through the service, and the spec rules that guard them. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { registerMnist, startHarness, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';
import { settled } from '../artifacts/fixtures.js';

let h: Harness;
let data: { train: string; test: string };
/** digits 5-9 of the train and test data, relabelled 0-4 */
let upper: { train: string; test: string };
/** the train and test data rotated by 30 degrees: the target domain */
let rotated: { train: string; test: string };
let base: any;

async function derive(name: string, from: string, transform: Record<string, unknown>): Promise<string> {
  const res = await h.request('POST', '/v1/datasets', { name, source: { from, transform } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const d = await settled(h, res.body.id);
  assert.equal(d.status, 'ready', JSON.stringify(d.error));
  return d.id;
}

const hyperparameters = (epochs: number) => ({ epochs, batchSize: 64, seed: 3, optimizer: { name: 'adam', learningRate: 0.003 } });

before(async () => {
  h = await startHarness();
  data = await registerMnist(h, 1500, 300);
  const keep = { classes: { keep: ['5', '6', '7', '8', '9'] } };
  upper = { train: await derive('upper', data.train, keep), test: await derive('upper-test', data.test, keep) };
  rotated = { train: await derive('rotated', data.train, { rotate: 30 }), test: await derive('rotated-test', data.test, { rotate: 30 }) };
  base = await waitForJob(h, (await h.request('POST', '/v1/jobs', trainSpec(data, { hyperparameters: hyperparameters(2) }))).body.id);
  assert.equal(base.status, 'succeeded', JSON.stringify(base.error));
});
after(() => h?.stop());

/** Asserts a 400 whose errors point at `pointer`, with a detail matching `detail`. */
async function refused(spec: unknown, pointer: string, detail: RegExp): Promise<void> {
  const res = await h.request('POST', '/v1/jobs', spec);
  assert.equal(res.status, 400, JSON.stringify(res.body));
  const error = (res.body.errors ?? []).find((e: any) => e.pointer === pointer);
  assert.ok(error, `expected an error at ${pointer}, got ${JSON.stringify(res.body.errors)}`);
  assert.match(error.detail, detail);
}

test("finetune with freeze and a new head: a 10-class base on 5 classes, with the test report in the result and the model's classes", async () => {
  // A fresh head on frozen features needs a brisker rate than the whole network.
  const spec = {
    type: 'finetune',
    model: { base: base.result.modelId },
    strategy: { kind: 'freeze', newHead: true },
    data: upper,
    hyperparameters: { ...hyperparameters(3), optimizer: { name: 'adam', learningRate: 0.02 } },
  };
  const job = await waitForJob(h, (await h.request('POST', '/v1/jobs', spec)).body.id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const m = job.result.metrics;
  assert.deepEqual(m.classes, ['5', '6', '7', '8', '9']);
  assert.equal(m.confusionMatrix.length, 5);
  assert.equal(m.perClassAccuracy.length, 5);
  assert.ok(m.testAccuracy > 0.5, `test accuracy ${m.testAccuracy}`);
  const model = (await h.request('GET', `/v1/models/${job.result.modelId}`)).body;
  assert.deepEqual(model.classes, ['5', '6', '7', '8', '9']);
  assert.equal(model.baseModelId, base.result.modelId);
  const events = (await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data;
  assert.ok(events.some((e: any) => e.type === 'log' && /were replaced by 'logits_2' with 5 classes/.test(e.data.message)));
});

test('domain_adaptation with dann from MNIST to MNIST rotated 30 degrees: domain signals per epoch, source and target accuracy', async () => {
  const spec = {
    type: 'domain_adaptation',
    model: { base: base.result.modelId },
    method: { kind: 'dann', hiddenUnits: 32 },
    data: { source: data.train, target: rotated.train, targetTest: rotated.test, sourceTest: data.test, targetLabelled: false },
    hyperparameters: hyperparameters(2),
  };
  const res = await h.request('POST', '/v1/jobs', spec);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const job = await waitForJob(h, res.body.id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  for (const k of ['domainAccuracy', 'domainLoss', 'grlLambda']) assert.equal(typeof job.metrics[k], 'number', k);
  const m = job.result.metrics;
  assert.ok(m.sourceAccuracy > 0.6 && m.targetAccuracy > 0.3, JSON.stringify(m));
  assert.equal(
    m.confusionMatrix.flat().reduce((a: number, b: number) => a + b, 0),
    300,
    "the report is the target test set's",
  );
  const model = (await h.request('GET', `/v1/models/${job.result.modelId}`)).body;
  assert.deepEqual(model.datasetIds, { source: data.train, target: rotated.train, targetTest: rotated.test, sourceTest: data.test });
  assert.deepEqual(model.inputShape, [784]);
});

test('evaluate: the test report of an existing model, nothing trained or stored', async () => {
  const res = await h.request('POST', '/v1/jobs', { type: 'evaluate', model: { base: base.result.modelId }, data: { test: rotated.test } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const job = await waitForJob(h, res.body.id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.equal(job.result.modelId, base.result.modelId);
  const m = job.result.metrics;
  assert.equal(m.testExamples, 300);
  assert.ok(m.testAccuracy > 0 && m.testAccuracy < base.result.metrics.testAccuracy, 'the rotated digits are harder than the upright ones');
  assert.equal(m.confusionMatrix.length, 10);
  assert.equal((await h.request('GET', `/v1/models/mdl_${job.id.slice(4)}`)).status, 404);
  assert.equal((await h.request('GET', `/v1/jobs/${job.id}/checkpoints`)).body.data.length, 0);
});

test('the spec rules: what each job type needs and refuses, parameters of the wrong kind, settings that cannot converge', async () => {
  const finetune = { type: 'finetune', model: { base: base.result.modelId }, data: upper, hyperparameters: hyperparameters(1) };
  await refused(finetune, '/strategy/newHead', /must be true: base model .* predicts 10 classes, dataset .* has 5/);
  await refused({ ...finetune, strategy: { kind: 'full', alpha: 1 } }, '/strategy/alpha', /does not apply to strategy full; it takes newHead/);
  await refused(
    {
      ...finetune,
      data,
      strategy: { kind: 'l2sp', alpha: 500 },
      hyperparameters: { ...hyperparameters(1), optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } },
    },
    '/strategy/alpha',
    /with sgd at learningRate 0.01 and momentum 0.9, alpha must stay below 380/,
  );
  const da = {
    type: 'domain_adaptation',
    model: { base: base.result.modelId },
    method: { kind: 'coral' },
    data: { source: data.train },
    hyperparameters: hyperparameters(1),
  };
  await refused(da, '/data/target', /is required for a domain_adaptation job with method coral/);
  await refused({ ...da, method: { kind: 'coral', threshold: 0.5 } }, '/method/threshold', /does not apply to method coral; it takes weight, featureLayer/);
  await refused(
    { ...da, data: { train: data.train, source: data.train, target: rotated.train } },
    '/data/train',
    /is not used by a domain_adaptation job \(a domain_adaptation job trains on data.source\)/,
  );
  await refused(
    { ...da, method: { kind: 'adabn' }, model: { architecture: { kind: 'mlp', hidden: [8] } } },
    '/model/architecture/batchNorm',
    /must be true for method adabn/,
  );
  await refused({ ...da, method: { kind: 'multi_source' } }, '/model/bases', /is required for method multi_source/);
  await refused(
    { ...da, model: { base: base.result.modelId, architecture: { kind: 'mlp', hidden: [8] } } },
    '/model',
    /exactly one of base .* or architecture/,
  );
  await refused(
    { type: 'evaluate', model: { base: base.result.modelId }, data: { test: data.test }, hyperparameters: hyperparameters(1) },
    '/hyperparameters',
    /not used by an evaluate job/,
  );
  await refused({ type: 'evaluate', model: { base: base.result.modelId }, data: {} }, '/data/test', /is required for an evaluate job/);
  await refused(
    trainSpec(data, { hyperparameters: { ...hyperparameters(1), earlyStopping: { patience: 2 } } }),
    '/hyperparameters/earlyStopping',
    /needs data.validation/,
  );
  await refused(
    trainSpec(data, { hyperparameters: { ...hyperparameters(1), lrSchedule: { kind: 'step' } } }),
    '/hyperparameters/lrSchedule/stepSize',
    /is required for a step schedule/,
  );
  await refused(
    trainSpec(data, { model: { architecture: { kind: 'mlp', hidden: [8], filters: [4] } } }),
    '/model/architecture/filters',
    /does not apply to architecture mlp/,
  );
  await refused(
    trainSpec(data, { hyperparameters: { ...hyperparameters(1), optimizer: { name: 'rmsprop', learningRate: 0.01, nesterov: true } } }),
    '/hyperparameters/optimizer/nesterov',
    /does not apply to optimizer rmsprop/,
  );
  await refused(trainSpec(data, { checkpoint: { everySteps: 0 } }), '/checkpoint/everySteps', /must be >= 1/);
});
