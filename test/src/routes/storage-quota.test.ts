/**
 * TENANT_STORAGE_QUOTA_BYTES: what one tenant keeps (datasets, models, checkpoints) is bounded,
 * refused before a request is accepted when nothing fits and while converting when the output
 * would not fit; the other tenant is not affected.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startApi, type Api } from '../../helpers/api.js';
import { waitFor } from '../../helpers/harness.js';
import { no5xx, postForm } from '../artifacts/fixtures.js';

/** one MNIST example as stored: 784 bytes and an int32 label */
const MNIST_EXAMPLE = 788;
const QUOTA = 250 * MNIST_EXAMPLE;
const A = { authorization: `Bearer ${'a'.repeat(20)}` };
const B = { authorization: `Bearer ${'b'.repeat(20)}` };
const C = { authorization: `Bearer ${'c'.repeat(20)}` };
let h: Api;

before(async () => {
  h = await startApi({ TENANT_STORAGE_QUOTA_BYTES: String(QUOTA), API_KEYS: `ta:${'a'.repeat(20)},tb:${'b'.repeat(20)},tc:${'c'.repeat(20)}` });
});
after(() => h?.stop());

const mnist = (auth: Record<string, string>, limit: number) =>
  h.request('POST', '/v1/datasets', { name: 'm', source: { builtin: 'mnist', split: 'test', limit } }, auth);
const settled = (auth: Record<string, string>, id: string) =>
  waitFor(`dataset ${id} to settle`, async () => {
    const { body } = await h.request('GET', `/v1/datasets/${id}`, undefined, auth);
    return body.status === 'validating' ? undefined : body;
  });

function assertQuotaProblem(res: { status: number; body: any }, used: number) {
  assert.equal(res.status, 409, JSON.stringify(res.body));
  assert.equal(res.body.type, 'urn:tfjs-adapt:problem:storage_quota_exceeded');
  assert.match(res.body.detail, new RegExp(`keeps ${used} bytes .* quota is ${QUOTA} bytes .*TENANT_STORAGE_QUOTA_BYTES`));
}

test('a tenant is held to its quota by every way in, and deleting makes room; the other tenant is unaffected', async () => {
  const first = await mnist(A, 200);
  assert.equal(first.status, 201);
  const used = 200 * MNIST_EXAMPLE;

  // a built-in is sized before it is written
  assertQuotaProblem(await mnist(A, 100), used);
  // the other tenant has its own quota
  assert.equal((await mnist(B, 200)).status, 201);

  // an upload converts within what is left, and fails when it would not fit
  const rows = Array.from({ length: 2000 }, (_, i) => `${'1,'.repeat(10)}${i % 2}`).join('\n');
  const csv = no5xx(
    await postForm(
      h,
      '/v1/datasets',
      { name: 'c', format: 'csv' },
      [{ field: 'file', content: `${Array.from({ length: 10 }, (_, i) => `f${i}`).join(',')},label\n${rows}\n` }],
      { headers: A },
    ),
  );
  assert.equal(csv.status, 202);
  const failed = await settled(A, csv.body.id);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error.code, 'storage_quota_exceeded');
  assert.equal(failed.error.location.expected, QUOTA - used, 'the room that was left');
  assert.match(failed.error.message, /TENANT_STORAGE_QUOTA_BYTES/);
  const datasets = join(h.dataDir, 'artifacts', 'datasets');
  assert.deepEqual(
    readdirSync(datasets).filter((n) => n.startsWith(csv.body.id)),
    [],
  );

  // a derived dataset is sized before it is written
  const derived = await h.request('POST', '/v1/datasets', { name: 'd', source: { from: first.body.id, transform: { invert: true } } }, A);
  assert.equal(derived.status, 202);
  const derivedEnd = await settled(A, derived.body.id);
  assert.equal(derivedEnd.error?.code, 'storage_quota_exceeded', JSON.stringify(derivedEnd));
  assert.match(derivedEnd.error.message, /keeps 200 examples/);

  // a model is sized from its manifest before it is stored
  const weights = new Uint8Array(50_000);
  const modelJson = JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'w', shape: [12_500], dtype: 'float32' }] }] });
  const model = no5xx(await postForm(h, '/v1/models', { modelJson }, [{ field: 'weights', content: weights, filename: 'w.bin' }], { headers: A }));
  assertQuotaProblem(model, used);

  // deleting the dataset gives its bytes back
  assert.equal((await h.request('DELETE', `/v1/datasets/${first.body.id}`, undefined, A)).status, 204);
  assert.equal(existsSync(join(datasets, first.body.id)), false);
  assert.equal((await mnist(A, 100)).status, 201);
});

test('with no room left at all, an upload is refused before its body is read', async () => {
  assert.equal((await mnist(C, 250)).status, 201, 'exactly the quota');
  const res = no5xx(await postForm(h, '/v1/datasets', { name: 'c', format: 'csv' }, [{ field: 'file', content: 'a,label\n1,x\n' }], { headers: C }));
  assertQuotaProblem(res, QUOTA);
  assert.match(res.body.detail, /no room left/);
  const uploads = join(h.dataDir, 'artifacts', 'uploads');
  assert.deepEqual(existsSync(uploads) ? readdirSync(uploads) : [], [], 'nothing of the upload kept');
});
