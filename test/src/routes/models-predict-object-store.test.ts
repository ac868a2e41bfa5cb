/**
 * Predictions with an object store (a real S3 server, s3rver): the API process predicts with its own
 * copy of the model, fetched from the store by the model's id when it has none (as on an API host
 * that shares nothing with the worker host that trained it). A model the store holds damaged or not
 * at all is a 409 artifact_damaged naming the object; a store that does not answer a 503. A job's
 * layer names are checked against its base fetched the same way.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { startApi, type Api } from '../../helpers/api.js';
import { registerMnist, waitFor } from '../../helpers/harness.js';
import { BUCKET, startS3, type S3Server } from '../../helpers/s3.js';
import { pattern, recordDigitModel, storeTrainedModel } from '../../helpers/trained-model.js';

let s3: S3Server;
let api: Api;

before(async () => {
  s3 = await startS3();
  // the AWS SDK takes its credentials from the environment (its default chain)
  Object.assign(process.env, s3.env);
  api = await startApi(s3.env);
});
after(async () => {
  await api?.stop();
  await s3?.destroy();
});

/** A trained model in the store and not on this host: written and published here, then this host's copy removed. */
async function modelOnlyInStore(): Promise<string> {
  const id = await storeTrainedModel(api.deps);
  const dir = api.deps.artifacts.modelDir(id);
  await api.deps.artifacts.publish(dir);
  await rm(dir, { recursive: true });
  return id;
}

const predict = (id: string) => api.request('POST', `/v1/models/${id}/predict`, { examples: [pattern(2, 11), pattern(0, 12), pattern(1, 13)] });
const described = (key: string) => `s3://${BUCKET}/artifacts/${key}`;

function assertDamaged(res: { status: number; body: any }, names: string) {
  assert.equal(res.status, 409, JSON.stringify(res.body));
  assert.equal(res.body.type, 'urn:tfjs-adapt:problem:artifact_damaged');
  assert.ok(res.body.detail.startsWith(names), `the detail names the object and what is wrong (${names}): ${res.body.detail}`);
}

test('a model this host has no copy of is fetched from the store and predicts as trained', async () => {
  const id = await modelOnlyInStore();
  const res = await predict(id);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(
    res.body.predictions.map((p: any) => p.classes[0].class),
    ['bottom', 'top-left', 'top-right'],
  );
});

test('a model the store holds damaged or not at all is a 409 artifact_damaged naming the object', async () => {
  const short = await modelOnlyInStore();
  const weights = `models/${short}/weights.bin`;
  const body = await s3.bytes(weights);
  await s3.put(weights, body.subarray(0, body.length - 4));
  assertDamaged(await predict(short), `${described(weights)} has ${body.length - 4} bytes; its manifest says ${body.length}`);

  const gone = await modelOnlyInStore();
  for (const key of await s3.keys(`models/${gone}/`)) await s3.remove(key);
  assertDamaged(await predict(gone), `${described(`models/${gone}`)} has no manifest`);
});

test('a store that does not answer is a 503 artifacts_unavailable; once it is back the model predicts', async () => {
  const id = await modelOnlyInStore();
  await s3.stop();
  try {
    const res = await predict(id);
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.type, 'urn:tfjs-adapt:problem:artifacts_unavailable');
  } finally {
    await s3.start();
  }
  const res = await predict(id);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(
    res.body.predictions.map((p: any) => p.classes[0].class),
    ['bottom', 'top-left', 'top-right'],
  );
});

test("a finetune's layer names are checked against its base fetched from the store: an unknown one is a 400 naming the base's layers", async () => {
  const data = await registerMnist(api, 100, 100);
  await waitFor('datasets ready', async () => {
    const states = await Promise.all([data.train, data.test].map(async (d) => (await api.request('GET', `/v1/datasets/${d}`)).body.status));
    return states.every((s) => s === 'ready');
  });
  const model = tf.sequential({
    layers: [tf.layers.dense({ units: 16, inputShape: [784], name: 'hidden_a' }), tf.layers.dense({ units: 10, name: 'out' })],
  });
  const id = 'mdl_layers_in_store';
  const dir = await recordDigitModel(api.deps, model, { id, name: 'two layers' });
  model.dispose();
  await api.deps.artifacts.publish(dir);
  await rm(dir, { recursive: true });
  const spec = {
    type: 'finetune',
    model: { base: id },
    strategy: { kind: 'freeze', newHead: true, featureLayer: 'hiden_a' },
    data,
    hyperparameters: { epochs: 1, batchSize: 32, optimizer: { name: 'adam', learningRate: 0.001 } },
  };
  const res = await api.request('POST', '/v1/jobs?dryRun=true', spec);
  assert.equal(res.status, 400, JSON.stringify(res.body));
  const hit = res.body.errors?.find((e: any) => e.pointer === '/strategy/featureLayer');
  assert.ok(hit, JSON.stringify(res.body.errors));
  assert.match(hit.detail, /'hiden_a', but model mdl_layers_in_store has no layer of that name; expected one of its 2 layers, e.g. 'hidden_a', 'out'/);
});
