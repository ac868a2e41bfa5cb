import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { registerMnist, startHarness, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';
import { postForm } from '../artifacts/fixtures.js';

let h: Harness;
let data: { train: string; test: string };

before(async () => {
  h = await startHarness();
  data = await registerMnist(h, 2000, 500);
});
after(() => h?.stop());

const finetune = (base: string) => ({
  type: 'finetune',
  model: { base },
  strategy: { kind: 'full' },
  data,
  hyperparameters: { epochs: 2, batchSize: 64, seed: 3, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } },
});

test('a trained model, downloaded and uploaded again, fine-tunes exactly like the original', async () => {
  const pre = await waitForJob(h, (await h.request('POST', '/v1/jobs', trainSpec(data))).body.id);
  assert.equal(pre.status, 'succeeded', JSON.stringify(pre.error));
  const original = pre.result.modelId;

  const modelJson = await (await fetch(`${h.url}/v1/models/${original}/model.json`)).text();
  const weights = new Uint8Array(await (await fetch(`${h.url}/v1/models/${original}/weights.bin`)).arrayBuffer());
  const uploaded = await postForm(h, '/v1/models', { name: 'round trip' }, [
    { field: 'modelJson', content: modelJson, filename: 'model.json' },
    { field: 'weights', content: weights, filename: 'weights.bin' },
  ]);
  assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
  const copy = uploaded.body.id;
  assert.notEqual(copy, original);
  const [a, b] = await Promise.all([h.request('GET', `/v1/models/${original}`), h.request('GET', `/v1/models/${copy}`)]);
  for (const k of ['inputShape', 'classes', 'preprocessing']) assert.deepEqual(b.body[k], a.body[k], k);

  const fromOriginal = await waitForJob(h, (await h.request('POST', '/v1/jobs', finetune(original))).body.id);
  const fromCopy = await waitForJob(h, (await h.request('POST', '/v1/jobs', finetune(copy))).body.id);
  assert.equal(fromOriginal.status, 'succeeded', JSON.stringify(fromOriginal.error));
  assert.equal(fromCopy.status, 'succeeded', JSON.stringify(fromCopy.error));
  assert.ok(fromCopy.result.metrics.testAccuracy > 0.7, `testAccuracy ${fromCopy.result.metrics.testAccuracy}`);
  assert.equal(fromCopy.result.metrics.testAccuracy, fromOriginal.result.metrics.testAccuracy);
  assert.equal(fromCopy.result.metrics.testLoss, fromOriginal.result.metrics.testLoss);
  const lineage = (await h.request('GET', `/v1/models/${fromCopy.result.modelId}`)).body;
  assert.equal(lineage.baseModelId, copy);
  assert.equal(lineage.jobId, fromCopy.id);
});
