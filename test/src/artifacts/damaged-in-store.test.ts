/**
 * Datasets, models and checkpoints the object store (a real S3 server, s3rver) holds damaged: a
 * manifest cut short, a file of another size than its manifest says, a file gone. A job that needs
 * a damaged dataset fails at once, not retried, with the code its inputs fail with
 * (dataset_corrupt, param naming the dataset); an API read of one answers 409 artifact_damaged
 * naming the object, never a 500 or a truncated body. The local copies are removed first, so every
 * read must come from the store, as on a host that shares nothing else.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { finetuneSpec, registerMnist, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';
import { BUCKET, startS3Harness, type S3Server } from '../../helpers/s3.js';

let s3: S3Server;
let h: Harness;
let stop = async () => {};
/** a job trained in the store: its model and its checkpoints of epochs 1 and 2 */
let trained: { id: string; modelId: string; checkpoints: { epoch: number; step: number }[] };

// short backoffs: without the fix a damaged dataset's job fails once its retries run out, not at a timeout
before(async () => {
  ({ s3, h, stop } = await startS3Harness({ JOB_BACKOFF_MS: '100' }));
  const data = await registerMnist(h, 300, 100);
  const job = await waitForJob(h, (await h.request('POST', '/v1/jobs', trainSpec(data))).body.id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const checkpoints = (await h.request('GET', `/v1/jobs/${job.id}/checkpoints`)).body.data;
  trained = { id: job.id, modelId: job.result.modelId, checkpoints };
});
after(() => stop());

/** what a host that never saw these artifacts has: nothing */
const forgetLocalCopies = () => ['datasets', 'models', 'jobs'].forEach((k) => rmSync(join(h.dataDir, 'artifacts', k), { recursive: true, force: true }));
const described = (key: string) => `s3://${BUCKET}/artifacts/${key}`;
const checkpointName = (c: { epoch: number; step: number }) => `epoch-${String(c.epoch).padStart(4, '0')}-step-${String(c.step).padStart(8, '0')}`;

/** A manifest cut after a colon: V8 then says 'Unexpected end of JSON input'. */
async function cutManifest(dir: string): Promise<string> {
  const key = `${dir}/.manifest.json`;
  const text = await s3.text(key);
  await s3.put(key, text.slice(0, text.indexOf('"name":') + 7));
  return key;
}

/** The file `key` put back `by` bytes shorter than its manifest says. Returns the sizes. */
async function shorten(key: string, by = 4): Promise<{ now: number; listed: number }> {
  const body = await s3.bytes(key);
  await s3.put(key, body.subarray(0, body.length - by));
  return { now: body.length - by, listed: body.length };
}

function assertDamaged(res: { status: number; headers: Headers; body: any }, names: string) {
  assert.equal(res.status, 409, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(res.body.type, 'urn:tfjs-adapt:problem:artifact_damaged');
  assert.equal(res.body.title, 'Stored artifact damaged');
  assert.ok(res.body.detail.startsWith(names), `the detail names the object and what is wrong (${names}): ${res.body.detail}`);
}

test(
  'a job whose dataset the store holds damaged fails at once with dataset_corrupt naming the dataset and the object, not retried',
  { timeout: 300_000 },
  async () => {
    const data = await registerMnist(h, 200, 100);
    const spec = trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 7, optimizer: { name: 'adam', learningRate: 0.003 } } });

    // the training set: its manifest cut short
    const manifest = await cutManifest(`datasets/${data.train}`);
    forgetLocalCopies();
    const first = await waitForJob(h, (await h.request('POST', '/v1/jobs', spec)).body.id, 120_000);
    assert.equal(first.status, 'failed');
    assert.equal(first.error.code, 'dataset_corrupt', JSON.stringify(first.error));
    assert.equal(first.error.param, '/data/train');
    assert.ok(
      first.error.message.startsWith(
        `dataset ${data.train} is damaged in the object store: ${described(manifest)} is not valid JSON (Unexpected end of JSON input)`,
      ),
      first.error.message,
    );
    assert.equal(first.attempt, 1, 'one attempt: a retry would read the same bytes');

    // the test set: features.bin shorter than its manifest says
    const other = await registerMnist(h, 200, 100);
    const features = `datasets/${other.test}/features.bin`;
    const { now, listed } = await shorten(features);
    forgetLocalCopies();
    const second = await waitForJob(h, (await h.request('POST', '/v1/jobs', { ...spec, data: other })).body.id, 120_000);
    assert.equal(second.status, 'failed');
    assert.equal(second.error.code, 'dataset_corrupt', JSON.stringify(second.error));
    assert.equal(second.error.param, '/data/test');
    assert.ok(
      second.error.message.includes(
        `dataset ${other.test} is damaged in the object store: ${described(features)} has ${now} bytes; its manifest says ${listed}`,
      ),
    );
    assert.equal(second.attempt, 1);
  },
);

test("a model the store holds damaged is a 409 artifact_damaged on download and as a job's base; a whole one still downloads", async () => {
  const { modelId } = trained;
  forgetLocalCopies();
  const whole = await fetch(`${h.url}/v1/models/${modelId}/model.json`);
  assert.equal(whole.status, 200);
  const modelJson = await whole.text();

  const weights = `models/${modelId}/weights.bin`;
  const { now, listed } = await shorten(weights);
  // not a 200 with the short body: tf.loadLayersModel would fail on it far from the cause
  const res = await fetch(`${h.url}/v1/models/${modelId}/weights.bin`);
  const text = await res.text();
  assert.equal(res.status, 409, `answered ${res.status} with ${text.length} characters`);
  assertDamaged({ status: res.status, headers: res.headers, body: JSON.parse(text) }, `${described(weights)} has ${now} bytes; its manifest says ${listed}`);

  await s3.remove(`models/${modelId}/model.json`);
  assertDamaged(
    await h.request('GET', `/v1/models/${modelId}/model.json`),
    `${described(`models/${modelId}/model.json`)} is missing; its manifest lists it with ${Buffer.byteLength(modelJson)} bytes`,
  );

  // a fine-tune from it: admission reads the base's model.json from the store
  const data = await registerMnist(h, 200, 100);
  const finetune = finetuneSpec(modelId, data);
  forgetLocalCopies();
  const posted = await h.request('POST', '/v1/jobs', finetune);
  assertDamaged(posted, described(`models/${modelId}/`));
});

test('a checkpoint kept as a model is read from the store: a whole one gives a model, a damaged one a 409 artifact_damaged naming the object', async () => {
  const [one, two] = [...trained.checkpoints].sort((x, y) => x.step - y.step);
  const weights = `jobs/${trained.id}/checkpoints/${checkpointName(two)}/weights.bin`;
  const { now, listed } = await shorten(weights);
  forgetLocalCopies();

  const kept = await h.request('POST', `/v1/jobs/${trained.id}/checkpoints/${one.epoch}/model`);
  assert.equal(kept.status, 201, JSON.stringify(kept.body));
  assert.equal(kept.body.metrics.step, one.step);
  const copied = await fetch(`${h.url}/v1/models/${kept.body.id}/weights.bin`);
  assert.equal(copied.status, 200);
  assert.equal((await copied.arrayBuffer()).byteLength, listed, "the checkpoint's weights, whole");

  const models = async () => (await h.request('GET', '/v1/models?limit=100')).body.data.length;
  const before = await models();
  const refused = await h.request('POST', `/v1/jobs/${trained.id}/checkpoints/${two.epoch}/model`);
  assertDamaged(refused, `${described(weights)} has ${now} bytes; its manifest says ${listed}`);
  assert.equal(await models(), before, 'no model was made of it');
});

test("a dataset the store holds damaged is a 409 artifact_damaged for its examples and as a derived set's source, which leaves no dataset behind", async () => {
  const { train } = await registerMnist(h, 100, 100);
  await s3.remove(`datasets/${train}/labels.bin`);
  forgetLocalCopies();
  const named = `${described(`datasets/${train}/labels.bin`)} is missing; its manifest lists it with 400 bytes`;
  assertDamaged(await h.request('GET', `/v1/datasets/${train}/examples?limit=2`), named);

  const before = (await h.request('GET', '/v1/datasets?limit=100')).body.data.length;
  const derived = await h.request('POST', '/v1/datasets', {
    name: 'half',
    source: { from: train, transform: { split: { part: 'train', fraction: 0.5 }, seed: 1 } },
  });
  assertDamaged(derived, named);
  assert.equal((await h.request('GET', '/v1/datasets?limit=100')).body.data.length, before, 'no dataset left validating');
});
