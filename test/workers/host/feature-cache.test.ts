/**
 * The feature cache through the whole service: a freeze fine-tune builds it and says so in its
 * result and events, the next one on the same base and dataset reuses it, its bytes count in the
 * tenant's storage quota, and deleting the base removes files and bytes together.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { directoryBytes } from '../../../src/artifacts/disk-usage.js';
import { freezeOnce } from '../../helpers/feature-cache.js';
import { startHarness, type Harness } from '../../helpers/harness.js';

const QUOTA = 5_000_000;
let h: Harness;

before(async () => {
  h = await startHarness({ TENANT_STORAGE_QUOTA_BYTES: String(QUOTA) });
});
after(() => h?.stop());

/** What the tenant keeps, as the quota counts it: read from the 409 of a built-in too large to fit. */
async function usedBytes(): Promise<number> {
  const res = await h.request('POST', '/v1/datasets', { name: 'too big', source: { builtin: 'mnist', split: 'test', limit: 10000 } });
  assert.equal(res.status, 409, JSON.stringify(res.body));
  return Number(/keeps (\d+) bytes/.exec(res.body.detail)?.[1]);
}

test('built by the first freeze fine-tune, reused by the next, counted in the quota, removed with its base', async () => {
  const { base, first, again } = await freezeOnce(h, { examples: 600 });
  assert.equal(first.result.featureCache.layer, 'dense_1');
  assert.equal(first.result.featureCache.bytes, 600 * 32 * 4);
  const events = (await h.request('GET', `/v1/jobs/${first.id}/events?limit=1000`)).body.data as { type: string; data: { message?: string } }[];
  assert.ok(events.some((e) => e.type === 'log' && /^feature cache built: the outputs of layer 'dense_1'/.test(e.data.message ?? '')));

  const second = await again();
  assert.equal(second.result.featureCache.status, 'reused');
  assert.equal(second.result.metrics.testAccuracy, first.result.metrics.testAccuracy, 'the same features, the same seed: the same model');
  const features = join(h.dataDir, 'artifacts', 'features', base);
  const cacheBytes = await directoryBytes(features);
  assert.ok(cacheBytes > 600 * 32 * 4, 'the features and their meta.json');
  const modelBytes = await directoryBytes(join(h.dataDir, 'artifacts', 'models', base));
  const before = await usedBytes();
  assert.equal((await h.request('DELETE', `/v1/models/${base}`)).status, 204);
  assert.ok(!existsSync(features), "the base's caches are gone");
  assert.equal(before - (await usedBytes()), modelBytes + cacheBytes, 'the cache was counted in the quota, and is no more');
});
