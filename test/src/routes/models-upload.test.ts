import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';
import { no5xx, postForm, type Reply, type UploadFile } from '../artifacts/fixtures.js';

let h: Harness;
let data: { train: string; test: string };
/** a model trained by the service, as downloaded */
let modelJson: any;
let weights: Buffer;

before(async () => {
  h = await startHarness();
  data = await registerMnist(h, 300, 100);
  const job = await waitForJob(
    h,
    (
      await h.request(
        'POST',
        '/v1/jobs',
        trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.003 } } }),
      )
    ).body.id,
  );
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  modelJson = (await h.request('GET', `/v1/models/${job.result.modelId}/model.json`)).body;
  weights = Buffer.from(await (await fetch(`${h.url}/v1/models/${job.result.modelId}/weights.bin`)).arrayBuffer());
});
after(() => h?.stop());

const clone = () => JSON.parse(JSON.stringify(modelJson));
const upload = (json: unknown, files: UploadFile[] = [{ field: 'weights', content: weights, filename: 'weights.bin' }], fields: Record<string, string> = {}) =>
  postForm(h, '/v1/models', fields, [
    { field: 'modelJson', content: typeof json === 'string' ? json : JSON.stringify(json), filename: 'model.json' },
    ...files,
  ]);

/** A 400 problem whose errors include `pointer`, with a detail matching `detail`. */
function assertRejected(res: Reply, pointer: string, detail?: RegExp) {
  no5xx(res);
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const hit = res.body.errors?.find((e: any) => e.pointer === pointer);
  assert.ok(hit, `expected an error at ${pointer}, got ${JSON.stringify(res.body.errors)}`);
  if (detail) assert.match(hit.detail, detail);
}

describe('model upload', () => {
  test('a downloaded model uploads as ready, with classes and preprocessing from its metadata', async () => {
    const res = await upload(modelJson, undefined, { name: 'mine' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const m = res.body;
    assert.equal(m.status, 'ready');
    assert.equal(m.name, 'mine');
    assert.deepEqual(m.inputShape, [784]);
    assert.deepEqual(m.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(m.preprocessing, { scale: 2 / 255, offset: -1 });
    assert.equal(m.jobId, null);
    assert.equal(res.headers.get('location'), `/v1/models/${m.id}`);
    const back = Buffer.from(await (await fetch(h.url + m.files.weights)).arrayBuffer());
    assert.ok(back.equals(weights));
    const json = (await h.request('GET', m.files.modelJson)).body;
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    assert.deepEqual(json.modelTopology, modelJson.modelTopology);
  });

  test('shards are matched by file name and stored as one weights.bin; without metadata classes are 0..n-1', async () => {
    const json = clone();
    delete json.userDefinedMetadata;
    json.weightsManifest[0].paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
    const cut = 1000;
    const res = await upload(json, [
      // uploaded out of order on purpose: the manifest's order decides
      { field: 'weights', content: weights.subarray(cut), filename: 'group1-shard2of2.bin' },
      { field: 'weights', content: weights.subarray(0, cut), filename: 'group1-shard1of2.bin' },
    ]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.equal(res.body.preprocessing, null);
    assert.equal(res.body.name, 'uploaded model');
    const back = Buffer.from(await (await fetch(h.url + res.body.files.weights)).arrayBuffer());
    assert.ok(back.equals(weights));
  });

  test('a weight the files do not hold, or a shard not uploaded, is named', async () => {
    const json = clone();
    json.weightsManifest[0].weights.push({ name: 'extra/kernel', shape: [10], dtype: 'float32' });
    const k = json.weightsManifest[0].weights.length - 1;
    assertRejected(await upload(json), `/modelJson/weightsManifest/0/weights/${k}`, /extra\/kernel.*missing or too short/);
    const sharded = clone();
    sharded.weightsManifest[0].paths = ['a.bin', 'b.bin'];
    assertRejected(
      await upload(sharded, [{ field: 'weights', content: weights.subarray(0, 8), filename: 'a.bin' }]),
      '/modelJson/weightsManifest/0/paths/1',
      /"b.bin"/,
    );
    assertRejected(await upload(modelJson, []), '/modelJson/weightsManifest/0/paths/0');
    assertRejected(
      await upload(modelJson, [
        { field: 'weights', content: weights, filename: 'weights.bin' },
        { field: 'weights', content: weights, filename: 'other.bin' },
      ]),
      '/weights',
    );
  });

  test('weights of the wrong size are refused: too short at the weight that does not fit, too long for the group', async () => {
    const specs = modelJson.weightsManifest[0].weights;
    assertRejected(
      await upload(modelJson, [{ field: 'weights', content: weights.subarray(0, weights.length - 4), filename: 'weights.bin' }]),
      `/modelJson/weightsManifest/0/weights/${specs.length - 1}`,
    );
    assertRejected(
      await upload(modelJson, [{ field: 'weights', content: Buffer.concat([weights, Buffer.alloc(8)]), filename: 'weights.bin' }]),
      '/modelJson/weightsManifest/0',
      /8 more/,
    );
    // a wrong shape shows as a size mismatch: too big runs past the files, too small leaves bytes over
    const wider = clone();
    wider.weightsManifest[0].weights[0].shape = [784, 33];
    assertRejected(await upload(wider), '/modelJson/weightsManifest/0/weights/0', /shape \[784, 33\].*only 101800 bytes/);
    const narrower = clone();
    narrower.weightsManifest[0].weights[0].shape = [784, 31];
    assertRejected(await upload(narrower), '/modelJson/weightsManifest/0', /3136 more/);
  });

  test('NaN or infinity in the weights is refused, naming the weight and element', async () => {
    const bad = Buffer.from(weights);
    bad.writeFloatLE(NaN, 4 * 17);
    assertRejected(
      await upload(modelJson, [{ field: 'weights', content: bad, filename: 'weights.bin' }]),
      '/modelJson/weightsManifest/0/weights/0',
      /NaN at element 17/,
    );
    const inf = Buffer.from(weights);
    inf.writeFloatLE(Infinity, weights.length - 4);
    const last = modelJson.weightsManifest[0].weights.length - 1;
    assertRejected(
      await upload(modelJson, [{ field: 'weights', content: inf, filename: 'weights.bin' }]),
      `/modelJson/weightsManifest/0/weights/${last}`,
      /Infinity/,
    );
  });

  test('bad JSON, a graph model, a topology that does not build, weights that do not match the layers', async () => {
    const text = JSON.stringify(modelJson, null, 1);
    const broken = text.replace('"modelTopology": {', '"modelTopology": {,');
    assertRejected(await upload(broken), '/modelJson', /not valid JSON: .* at line 2, column \d+/);
    assertRejected(await upload({ ...clone(), format: 'graph-model' }), '/modelJson/format', /LayersModel/);
    const unknownLayer = clone();
    unknownLayer.modelTopology.config.layers[0].class_name = 'Sparkle';
    // an unknown class is refused before TensorFlow.js sees it, at the layer
    assertRejected(await upload(unknownLayer), '/modelJson/modelTopology/config/layers/0', /layer 'dense_1' \(Sparkle\) cannot be trained/);
    const noInput = clone();
    noInput.modelTopology.config.layers[0].config.units = 'many';
    assertRejected(await upload(noInput), '/modelJson/modelTopology', /does not build/);
    const renamed = clone();
    renamed.weightsManifest[0].weights[0].name = 'nobody/kernel';
    assertRejected(await upload(renamed), '/modelJson/weightsManifest', /nobody\/kernel|not set/);
    const wrongClasses = clone();
    wrongClasses.userDefinedMetadata.tfjsAdapt.classes = ['a', 'b'];
    assertRejected(await upload(wrongClasses), '/modelJson/userDefinedMetadata/tfjsAdapt/classes', /2 classes.*10/);
  });

  test('the form itself: missing modelJson, unknown fields, not multipart', async () => {
    assertRejected(await postForm(h, '/v1/models', {}, [{ field: 'weights', content: weights, filename: 'weights.bin' }]), '/modelJson');
    assertRejected(await upload(modelJson, undefined, { colour: 'red' }), '/colour');
    // JSON is an import from a URL, which this is not
    const json = await h.request('POST', '/v1/models', { modelJson });
    assert.equal(json.status, 400);
    assert.ok(
      json.body.errors.some((e: any) => e.pointer === '/source' || e.pointer === '/modelJson'),
      JSON.stringify(json.body),
    );
    const text = await h.request('POST', '/v1/models', 'model.json', { 'content-type': 'text/plain' });
    assert.equal(text.status, 415);
    assert.equal(text.body.status, 415);
    assert.deepEqual(readdirSync(join(h.dataDir, 'artifacts', 'uploads')), []);
    assert.ok(!readdirSync(join(h.dataDir, 'artifacts', 'models')).some((f) => f.includes('.tmp-')), 'no half-written model');
  });
});

test('DELETE refuses while a queued or running job starts from the model, then removes it', async () => {
  const m = (await upload(modelJson)).body;
  const spec = {
    type: 'finetune',
    model: { base: m.id },
    strategy: { kind: 'full' },
    data,
    hyperparameters: { epochs: 500, batchSize: 64, seed: 1, optimizer: { name: 'sgd', learningRate: 0.001, momentum: 0.9 } },
  };
  const job = (await h.request('POST', '/v1/jobs', spec)).body;
  const refused = await h.request('DELETE', `/v1/models/${m.id}`);
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  assert.match(refused.body.detail, new RegExp(job.id));
  await h.request('POST', `/v1/jobs/${job.id}/cancel`);
  await waitFor('the job to stop', async () => ['cancelled', 'failed', 'succeeded'].includes((await h.request('GET', `/v1/jobs/${job.id}`)).body.status));
  assert.equal((await h.request('DELETE', `/v1/models/${m.id}`)).status, 204);
  assert.equal((await h.request('GET', `/v1/models/${m.id}`)).status, 404);
  assert.ok(!existsSync(join(h.dataDir, 'artifacts', 'models', m.id)));
  assert.equal((await h.request('DELETE', `/v1/models/${m.id}`)).status, 404);
});
