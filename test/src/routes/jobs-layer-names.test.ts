/**
 * Layer names in a finetune spec (strategy.featureLayer, strategy.trainFrom) are checked against
 * the base model's stored model.json when the job is created: an unknown one is a 400 naming the
 * field and listing the model's layers; known ones queue the job. The spec-only rules around them
 * (featureLayer and head need newHead, trainFrom goes without trainableLayers) too. The feature
 * caches of a model go when the model is deleted.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { startApi, type Api } from '../../helpers/api.js';
import { registerMnist, waitFor } from '../../helpers/harness.js';
import { recordDigitModel } from '../../helpers/trained-model.js';
import { featureCacheDir } from '../../../src/artifacts/feature-cache.js';

let h: Api;
let data: { train: string; test: string };
const MODEL = 'mdl_layers';

before(async () => {
  h = await startApi();
  data = await registerMnist(h, 100, 100);
  await waitFor('datasets ready', async () => {
    const states = await Promise.all([data.train, data.test].map(async (id) => (await h.request('GET', `/v1/datasets/${id}`)).body.status));
    return states.every((s) => s === 'ready');
  });
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 16, inputShape: [784], name: 'hidden_a' }),
      tf.layers.dense({ units: 16, name: 'hidden_b' }),
      tf.layers.dense({ units: 10, name: 'out' }),
    ],
  });
  await recordDigitModel(h.deps, model, { id: MODEL, name: 'three layers' });
  model.dispose();
});
after(() => h?.stop());

const spec = (strategy: Record<string, unknown>) => ({
  type: 'finetune',
  model: { base: MODEL },
  strategy,
  data,
  hyperparameters: { epochs: 1, batchSize: 32, optimizer: { name: 'adam', learningRate: 0.001 } },
});

function errorAt(res: { status: number; body: any }, pointer: string): string {
  assert.equal(res.status, 400, JSON.stringify(res.body));
  const hit = res.body.errors?.find((e: any) => e.pointer === pointer);
  assert.ok(hit, `expected an error at ${pointer}, got ${JSON.stringify(res.body.errors)}`);
  return hit.detail;
}

test("an unknown featureLayer or trainFrom is a 400 naming the field and the model's layers", async () => {
  const cut = errorAt(await h.request('POST', '/v1/jobs', spec({ kind: 'freeze', newHead: true, featureLayer: 'hiden_b' })), '/strategy/featureLayer');
  assert.match(cut, /'hiden_b', but model mdl_layers has no layer of that name; expected one of its 3 layers, e.g. 'hidden_a', 'hidden_b', 'out'/);
  const from = errorAt(await h.request('POST', '/v1/jobs', spec({ kind: 'freeze', trainFrom: 'nope' })), '/strategy/trainFrom');
  assert.match(from, /'nope'.*'hidden_a', 'hidden_b', 'out'/);
  const removed = errorAt(
    await h.request('POST', '/v1/jobs', spec({ kind: 'freeze', newHead: true, featureLayer: 'hidden_a', trainFrom: 'hidden_b' })),
    '/strategy/trainFrom',
  );
  assert.match(removed, /comes after featureLayer 'hidden_a'/);
});

test('spec rules: featureLayer and head need newHead, trainFrom excludes trainableLayers, trainFrom is for freeze only', async () => {
  errorAt(await h.request('POST', '/v1/jobs', spec({ kind: 'freeze', featureLayer: 'hidden_a' })), '/strategy/featureLayer');
  errorAt(await h.request('POST', '/v1/jobs', spec({ kind: 'full', head: { hidden: [8] } })), '/strategy/head');
  errorAt(await h.request('POST', '/v1/jobs', spec({ kind: 'freeze', trainFrom: 'hidden_b', trainableLayers: 2 })), '/strategy/trainFrom');
  errorAt(await h.request('POST', '/v1/jobs', spec({ kind: 'l2sp', trainFrom: 'hidden_b' })), '/strategy/trainFrom');
  errorAt(await h.request('POST', '/v1/jobs', spec({ kind: 'freeze', newHead: true, head: { dropout: 1 } })), '/strategy/head/dropout');
});

test('known layer names queue the job', async () => {
  const res = await h.request(
    'POST',
    '/v1/jobs',
    spec({ kind: 'freeze', newHead: true, featureLayer: 'hidden_b', head: { hidden: [8], dropout: 0.2 }, trainFrom: 'hidden_b' }),
  );
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.equal(res.body.status, 'queued');
  assert.equal((await h.request('POST', `/v1/jobs/${res.body.id}/cancel`)).status, 200);
});

test('deleting a model or a dataset removes its feature caches', async () => {
  const root = h.deps.artifacts.featuresRoot();
  const cache = featureCacheDir(root, MODEL, data.train, 'k');
  const other = featureCacheDir(root, 'mdl_other', data.test, 'k');
  await mkdir(cache, { recursive: true });
  await mkdir(other, { recursive: true });
  await waitFor('no job uses the model', async () => (await h.deps.store.models.activeJobsUsing(MODEL)).length === 0);
  assert.equal((await h.request('DELETE', `/v1/models/${MODEL}`)).status, 204);
  assert.ok(!existsSync(join(root, MODEL)));
  assert.equal((await h.request('DELETE', `/v1/datasets/${data.test}`)).status, 204);
  assert.ok(!existsSync(join(root, 'mdl_other', data.test)));
});
