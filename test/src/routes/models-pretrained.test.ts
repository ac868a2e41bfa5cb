/**
 * A real pretrained image network as a base: the Keras MobileNetV2 that nsfwjs ships (functional,
 * 224x224x3, uint8-quantized, ZeroPadding2D, DepthwiseConv2D, BatchNormalization, ReLU(6), Add),
 * uploaded in several shards, imported from a URL served by a local HTTP server, refused when one
 * of its layers cannot be trained, and fine-tuned with a frozen base on the wasm backend.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startHarness, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';
import { nsfwMobileNetV2, writeModelFiles, type MaterialisedModel } from '../../helpers/nsfwjs-model.js';
import { no5xx, png, postForm, uploadDataset, zip } from '../artifacts/fixtures.js';

let h: Harness;
let server: Server;
let base: string;
let dir: string | undefined;
const mobilenet: MaterialisedModel = nsfwMobileNetV2(4);
/** weights of the model once dequantized: every one of its 266 weights is uint8 */
const FLOAT32_BYTES =
  4 * mobilenet.modelJson.weightsManifest[0].weights.reduce((sum: number, w: any) => sum + w.shape.reduce((a: number, b: number) => a * b, 1), 0);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tfjs-adapt-mobilenet-'));
  const served = dir;
  await writeModelFiles(mobilenet, join(served, 'm'));
  // /m/ serves the files; /moved/model.json redirects there; /broken/ lacks its third shard
  server = createServer((req, res) => void serve(req.url ?? '/', res));
  const serve = async (path: string, res: ServerResponse) => {
    if (path === '/moved/model.json') return void res.writeHead(302, { location: '/m/model.json' }).end();
    if (path === '/loop/model.json') return void res.writeHead(302, { location: '/loop/model.json' }).end();
    const file = path.replace(/^\/(m|broken)\//, '');
    if (path.startsWith('/broken/') && file === mobilenet.shards[2].filename) return void res.writeHead(404).end();
    try {
      const body = await readFile(join(served, 'm', file));
      res.writeHead(200, { 'content-length': body.length }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  };
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // the training children inherit it: the fine-tune below must run on wasm
  process.env.TFJS_BACKEND = 'wasm';
  h = await startHarness({ MODEL_IMPORT_ALLOWED_HOSTS: `127.0.0.1:${(server.address() as AddressInfo).port}` });
});
after(async () => {
  await h?.stop();
  server?.closeAllConnections();
  await new Promise((done) => server?.close(done));
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const upload = (json: unknown, fields: Record<string, string> = {}) =>
  postForm(h, '/v1/models', fields, [
    { field: 'modelJson', content: JSON.stringify(json), filename: 'model.json' },
    ...mobilenet.shards.map((s) => ({ field: 'weights', content: s.content, filename: s.filename })),
  ]);

async function imported(url: string): Promise<any> {
  const res = await h.request('POST', '/v1/models', { name: 'from url', source: { url } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.equal(res.body.status, 'validating');
  return waitFor(
    'the import to settle',
    async () => {
      const m = (await h.request('GET', `/v1/models/${res.body.id}`)).body;
      return m.status === 'validating' ? undefined : m;
    },
    120_000,
  );
}

describe('the nsfwjs MobileNetV2', () => {
  test('uploads in four shards as ready, stored dequantized to float32 with its metadata and the preprocessing given', async () => {
    const json = structuredClone(mobilenet.modelJson);
    json.userDefinedMetadata = { origin: 'nsfwjs', tfjsAdapt: { classes: ['drawing', 'hentai', 'neutral', 'porn', 'sexy'] } };
    const res = await upload(json, { name: 'mobilenet', preprocessing: JSON.stringify({ scale: 1 / 255, offset: 0 }) });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const m = res.body;
    assert.equal(m.status, 'ready');
    assert.deepEqual(m.inputShape, [224, 224, 3]);
    assert.deepEqual(m.classes, ['drawing', 'hentai', 'neutral', 'porn', 'sexy']);
    assert.deepEqual(m.preprocessing, { scale: 1 / 255, offset: 0 });
    const stored = (await h.request('GET', m.files.modelJson)).body;
    assert.deepEqual(stored.userDefinedMetadata, json.userDefinedMetadata);
    assert.ok(stored.weightsManifest[0].weights.every((w: any) => w.quantization === undefined && w.dtype === 'float32'));
    const weights = Buffer.from(await (await fetch(h.url + m.files.weights)).arrayBuffer());
    assert.equal(weights.length, FLOAT32_BYTES);
    // Conv1/kernel[0] = q * scale + min, as tfjs dequantizes it
    const first = mobilenet.modelJson.weightsManifest[0].weights[0];
    const q = mobilenet.shards[0].content[0];
    assert.ok(Math.abs(weights.readFloatLE(0) - (q * first.quantization.scale + first.quantization.min)) < 1e-6);
  });

  test('a layer that cannot be trained is refused with its class, name and place in model.json', async () => {
    const json = structuredClone(mobilenet.modelJson);
    const layer = json.modelTopology.model_config.config.layers[17];
    layer.class_name = 'LocallyConnected2D';
    const res = await upload(json);
    no5xx(res);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.type, 'urn:tfjs-adapt:problem:untrainable_layers');
    const [error] = res.body.errors;
    assert.equal(error.pointer, '/modelJson/modelTopology/model_config/config/layers/17');
    assert.match(error.detail, new RegExp(`layer '${layer.name}' \\(LocallyConnected2D\\) cannot be trained`));
  });

  test('imports from a URL (through a redirect, weights beside the final model.json) as ready', async () => {
    const m = await imported(`${base}/moved/model.json`);
    assert.equal(m.status, 'ready', JSON.stringify(m.error));
    assert.deepEqual(m.source, { url: `${base}/moved/model.json` });
    assert.deepEqual(m.inputShape, [224, 224, 3]);
    const weights = await fetch(h.url + m.files.weights);
    assert.equal(Number(weights.headers.get('content-length')), FLOAT32_BYTES);
    await weights.arrayBuffer();
  });

  test('a failed import says what and where: a missing shard, a redirect loop, an address not allowed', async () => {
    const broken = await imported(`${base}/broken/model.json`);
    assert.equal(broken.status, 'failed');
    assert.equal(broken.error.code, 'fetch_failed');
    assert.equal(broken.error.pointer, '/modelJson/weightsManifest/0/paths/2');
    assert.match(broken.error.message, /group1-shard3of4\.bin answered HTTP 404/);
    const loop = await imported(`${base}/loop/model.json`);
    assert.equal(loop.error.pointer, '/source/url');
    assert.match(loop.error.message, /redirects more than 3 times/);
    const local = await imported(base.replace('127.0.0.1', 'localhost') + '/m/model.json');
    assert.equal(local.status, 'failed');
    assert.equal(local.error.pointer, '/source/url');
    assert.match(local.error.message, /not a global unicast address.*MODEL_IMPORT_ALLOWED_HOSTS/);
    const bad = await h.request('POST', '/v1/models', { source: { url: 'ftp://example.com/model.json' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].pointer, '/source/url');
  });

  test('fine-tunes with a frozen base on wasm: 224x224x3 photos, a new head, a few steps, succeeded', async () => {
    const m = (await upload(mobilenet.modelJson)).body;
    assert.equal(m.status, 'ready', JSON.stringify(m));
    const photo = async (seed: number) =>
      png(
        Uint8Array.from({ length: 224 * 224 * 3 }, (_, i) => (i * seed + (i >> 7)) % 251),
        224,
        224,
        3,
      );
    const entries: Array<[string, Uint8Array]> = [];
    for (let i = 0; i < 6; i++) entries.push([`${i % 2 ? 'cats' : 'dogs'}/${i}.png`, await photo(i + 3)]);
    const d = await uploadDataset(h, { name: 'pets', format: 'images', channels: '3', layout: 'image' }, [
      { field: 'file', content: zip(entries), filename: 'pets.zip' },
    ]);
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.deepEqual(d.featureShape, [224, 224, 3]);
    const spec = {
      type: 'finetune',
      model: { base: m.id },
      strategy: { kind: 'freeze', newHead: true },
      data: { train: d.id },
      // one epoch is three steps through the 224x224 base: enough to show it trains
      hyperparameters: { epochs: 1, batchSize: 2, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } },
    };
    const created = await h.request('POST', '/v1/jobs', spec);
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const job = await waitForJob(h, created.body.id, 600_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.backend, 'wasm');
    const trained = (await h.request('GET', `/v1/models/${job.result.modelId}`)).body;
    assert.deepEqual(trained.classes, ['cats', 'dogs']);
    assert.deepEqual(trained.inputShape, [224, 224, 3]);
  });
});
