/**
 * The feature cache with ARTIFACTS_URL set, against a real S3 server (s3rver): a freeze
 * fine-tune's cache is published to the store like a checkpoint, a host without a copy (its
 * local copies removed) fetches and reuses it instead of building it again, and deleting the
 * base removes it from the store.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freezeOnce } from '../../helpers/feature-cache.js';
import type { Harness } from '../../helpers/harness.js';
import { startS3Harness, type S3Server } from '../../helpers/s3.js';

let s3: S3Server;
let h: Harness;
let stop = async () => {};

before(async () => ({ s3, h, stop } = await startS3Harness()));
after(() => stop());

test('a feature cache built on one host is in the store, reused by a host without a copy, and deleted with its base', { timeout: 300_000 }, async () => {
  const { data, base, first, again } = await freezeOnce(h, { examples: 600 });
  const stored = await s3.keys(`features/${base}/${data.train}/`);
  assert.equal(stored.filter((k) => k.endsWith('/.manifest.json')).length, 1, `one complete cache in the store: ${stored.join(' ')}`);
  assert.ok(stored.some((k) => k.endsWith('/features.bin')));

  // a host that never saw the cache: it must come from the store
  const localFeatures = join(h.dataDir, 'artifacts', 'features');
  rmSync(localFeatures, { recursive: true, force: true });
  const second = await again();
  assert.equal(second.result.featureCache.status, 'reused', 'fetched from the store, not built again');
  assert.equal(second.result.metrics.testAccuracy, first.result.metrics.testAccuracy, 'the same features, the same seed: the same model');
  assert.ok(existsSync(join(localFeatures, base, data.train)), 'the host fetched it');

  assert.equal((await h.request('DELETE', `/v1/models/${base}`)).status, 204);
  assert.deepEqual(await s3.keys(`features/${base}/`), [], "the base's caches left the store with it");
  assert.ok(!existsSync(join(localFeatures, base)));
});
