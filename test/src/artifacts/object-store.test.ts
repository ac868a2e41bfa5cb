/**
 * The API's artifact paths with ARTIFACTS_URL set, against a real S3 server (s3rver): datasets
 * (built in and uploaded), training, checkpoints, model download and upload, a fine-tune from
 * an uploaded base, and deletes. The local copies are removed between steps, so every read
 * that follows must come from the object store, as on a host that shares nothing else.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { finetuneSpec, registerMnist, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';
import { startS3Harness, type S3Server } from '../../helpers/s3.js';
import { postForm, uploadDataset } from './fixtures.js';

let s3: S3Server;
let h: Harness;
let stop = async () => {};

before(async () => ({ s3, h, stop } = await startS3Harness()));
after(() => stop());

const local = (...parts: string[]) => join(h.dataDir, 'artifacts', ...parts);
/** what a host that never saw these artifacts has: nothing */
const forgetLocalCopies = () => ['datasets', 'models', 'jobs'].forEach((k) => rmSync(local(k), { recursive: true, force: true }));

test('datasets, checkpoints and models live in the object store; a host without copies fetches them; deletes remove them', { timeout: 300_000 }, async () => {
  const data = await registerMnist(h, 1000, 200);
  assert.deepEqual(await s3.keys(`datasets/${data.train}/`), [
    `datasets/${data.train}/.manifest.json`,
    `datasets/${data.train}/features.bin`,
    `datasets/${data.train}/labels.bin`,
  ]);

  const csv = await uploadDataset(h, { name: 'c', format: 'csv' }, [{ field: 'file', content: 'a,b,label\n1,2,x\n3,4,y\n5,6,x\n', filename: 'data.csv' }]);
  assert.equal(csv.status, 'ready', JSON.stringify(csv.error));
  assert.equal((await s3.keys(`datasets/${csv.id}/`)).length, 3);

  forgetLocalCopies();
  const job = await waitForJob(h, (await h.request('POST', '/v1/jobs', trainSpec(data))).body.id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.ok(existsSync(local('datasets', data.train)), 'the worker fetched the dataset it trained on');
  const checkpoints = (await h.request('GET', `/v1/jobs/${job.id}/checkpoints`)).body.data;
  assert.equal(checkpoints.length, 2, 'one checkpoint per epoch');
  const stored = await s3.keys(`jobs/${job.id}/checkpoints/`);
  for (const c of checkpoints) {
    const name = `epoch-${String(c.epoch).padStart(4, '0')}-step-${String(c.step).padStart(8, '0')}`;
    assert.ok(stored.includes(`jobs/${job.id}/checkpoints/${name}/.manifest.json`), `checkpoint ${name} is complete in the store: ${stored.join(' ')}`);
  }
  const modelId = job.result.modelId;
  assert.ok((await s3.keys(`models/${modelId}/`)).includes(`models/${modelId}/weights.bin`));

  // served from the object store: no local copy is left
  forgetLocalCopies();
  const modelJsonRes = await fetch(`${h.url}/v1/models/${modelId}/model.json`);
  assert.equal(modelJsonRes.status, 200);
  const modelJson = await modelJsonRes.text();
  assert.ok(JSON.parse(modelJson).weightsManifest);
  const weightsRes = await fetch(`${h.url}/v1/models/${modelId}/weights.bin`);
  const weights = new Uint8Array(await weightsRes.arrayBuffer());
  assert.equal(Number(weightsRes.headers.get('content-length')), weights.length);
  assert.ok(weights.length > 1000);
  assert.ok(!existsSync(local('models', modelId)), 'downloads stream from the store, they leave no copy');

  const uploaded = await postForm(h, '/v1/models', { name: 'from the store' }, [
    { field: 'modelJson', content: modelJson, filename: 'model.json' },
    { field: 'weights', content: weights, filename: 'weights.bin' },
  ]);
  assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
  const copy = uploaded.body.id;
  assert.deepEqual(await s3.keys(`models/${copy}/`), [`models/${copy}/.manifest.json`, `models/${copy}/model.json`, `models/${copy}/weights.bin`]);

  forgetLocalCopies();
  const finetune = finetuneSpec(copy, data);
  const tuned = await waitForJob(h, (await h.request('POST', '/v1/jobs', finetune)).body.id);
  assert.equal(tuned.status, 'succeeded', JSON.stringify(tuned.error));
  assert.ok(existsSync(local('models', copy)), 'the worker fetched the base it fine-tuned');

  assert.equal((await h.request('DELETE', `/v1/models/${copy}`)).status, 204);
  assert.deepEqual(await s3.keys(`models/${copy}/`), []);
  assert.ok(!existsSync(local('models', copy)));
  assert.equal((await h.request('DELETE', `/v1/datasets/${csv.id}`)).status, 204);
  assert.deepEqual(await s3.keys(`datasets/${csv.id}/`), []);
});

test('with the object store away the API answers 503 problem+json, and serves again once it is back', async () => {
  const data = await registerMnist(h, 200, 100);
  await s3.stop();
  try {
    const res = await h.request('GET', `/v1/datasets/${data.train}/examples?limit=1`);
    forgetLocalCopies();
    const away = await h.request('GET', `/v1/datasets/${data.test}/examples?limit=1`);
    assert.equal(away.status, 503, JSON.stringify(away.body));
    assert.match(away.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(away.body.type, 'urn:tfjs-adapt:problem:artifacts_unavailable', JSON.stringify(away.body));
    assert.equal(res.status, 200, 'a copy this process has needs no store');
  } finally {
    await s3.start();
  }
  assert.equal((await h.request('GET', `/v1/datasets/${data.test}/examples?limit=1`)).status, 200);
});

test('ARTIFACTS_URL, S3_ENDPOINT and S3_FORCE_PATH_STYLE are checked at start, with what was expected', () => {
  const env = { DATA_DIR: h.dataDir };
  assert.equal(loadConfig(env).objectStore, null, 'unset: the local directory is the truth');
  assert.deepEqual(loadConfig({ ...env, ARTIFACTS_URL: 's3://my-bucket/a/b/' }).objectStore, {
    bucket: 'my-bucket',
    prefix: 'a/b',
    forcePathStyle: false,
    region: 'us-east-1',
  });
  for (const [name, value, expected] of [
    ['ARTIFACTS_URL', '/data/artifacts', /expected s3:\/\/bucket/],
    ['ARTIFACTS_URL', 's3://B', /expected s3:\/\/bucket/],
    ['S3_ENDPOINT', 'minio:9000', /expected an http/],
    ['S3_FORCE_PATH_STYLE', 'yes', /expected true or false/],
  ] as const) {
    assert.throws(
      () => loadConfig({ ...env, ARTIFACTS_URL: 's3://ok-bucket', [name]: value }),
      (err: Error) => err instanceof ConfigError && expected.test(err.message) && err.message.includes(name),
    );
  }
});
