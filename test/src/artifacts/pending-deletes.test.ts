/**
 * Deletes while the object store is away (pending-deletes.ts): the record goes at once, its
 * files stay recorded in pending_deletes, and a sweep once the store is back removes them.
 * Against a real S3 server (s3rver) stopped and started again, and real PGlite.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { openArtifacts, type Artifacts } from '../../../src/artifacts/artifacts.js';
import { ConversionLeases } from '../../../src/artifacts/ingest/conversion-leases.js';
import { deleteWithArtifacts, sweepPendingDeletes } from '../../../src/artifacts/pending-deletes.js';
import { loadConfig } from '../../../src/config.js';
import { openStore, type Store } from '../../../src/store/store.js';
import { freshDataDir } from '../../helpers/data-dir.js';
import { registerMnist, startHarness, waitFor } from '../../helpers/harness.js';
import { startS3, type S3Server } from '../../helpers/s3.js';

let s3: S3Server;
let dir: string;
let store: Store;
let artifacts: Artifacts;
const log = pino({ level: 'silent' });

before(async () => {
  s3 = await startS3();
  // the AWS SDK takes its credentials from the environment (its default chain)
  Object.assign(process.env, s3.env);
  dir = await freshDataDir('tfjs-adapt-pending-deletes-');
  store = await openStore({ dataDir: dir });
  artifacts = openArtifacts(loadConfig({ DATA_DIR: dir, ...s3.env }));
});
after(async () => {
  artifacts?.close();
  await store?.close();
  await s3?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const fileIn = (name: string) => async (tmp: string) => writeFileSync(join(tmp, name), 'x'.repeat(100));

test('a delete while the store is away is recorded, kept through failed sweeps, and swept once the store is back', async () => {
  const dataset = artifacts.datasetDir('ds_gone');
  const features = join(artifacts.featuresRoot(), 'md_base', 'ds_gone', 'key1');
  await artifacts.writeDir(dataset, fileIn('features.bin'));
  await artifacts.writeDir(features, fileIn('features.bin'));
  assert.deepEqual(await s3.keys('datasets/ds_gone/'), ['datasets/ds_gone/.manifest.json', 'datasets/ds_gone/features.bin']);
  assert.equal((await s3.keys('features/md_base/')).length, 2, 'a feature cache is an artifact of the store like any other');

  await s3.stop();
  let deleted = false;
  await deleteWithArtifacts({ store, artifacts, log }, [dataset, join(artifacts.featuresRoot(), 'md_base')], async (q) => {
    await q.query('SELECT 1');
    deleted = true;
  });
  assert.ok(deleted, 'the record is deleted although the store is away');
  assert.ok(!existsSync(dataset), 'the local copy goes at once');
  const pending = await store.pendingDeletes.list(10);
  assert.deepEqual(
    pending.map((p) => [p.path, p.attempts]),
    [
      ['datasets/ds_gone', 1],
      ['features/md_base', 0],
    ],
    'both recorded; the first failed, and the removal stopped there: the store is away for the other too',
  );
  assert.equal(await sweepPendingDeletes({ store, artifacts, log }), 0);
  assert.ok((await store.pendingDeletes.list(10)).length >= 1, 'still recorded after a sweep that could not reach the store');

  await s3.start();
  assert.equal((await s3.keys('datasets/ds_gone/')).length, 2, 'the files outlived the outage: nothing else removed them');
  assert.equal(await sweepPendingDeletes({ store, artifacts, log }), 2);
  assert.deepEqual(await s3.keys('datasets/ds_gone/'), []);
  assert.deepEqual(await s3.keys('features/md_base/'), []);
  assert.deepEqual(await store.pendingDeletes.list(10), [], 'nothing left to sweep');
});

test("deleting a dataset while the store is away answers 204; the worker host's reconciliation removes its files once the store is back", async () => {
  const h = await startHarness({ ...s3.env, RECONCILE_INTERVAL_MS: '200' });
  try {
    const data = await registerMnist(h, 200, 100);
    assert.equal((await s3.keys(`datasets/${data.test}/`)).length, 3);
    await s3.stop();
    try {
      const res = await h.request('DELETE', `/v1/datasets/${data.test}`);
      assert.equal(res.status, 204, JSON.stringify(res.body));
      assert.equal((await h.request('GET', `/v1/datasets/${data.test}`)).status, 404);
    } finally {
      await s3.start();
    }
    await waitFor(`the files of ${data.test} to be swept`, async () => (await s3.keys(`datasets/${data.test}/`)).length === 0, 120_000);
    assert.equal((await s3.keys(`datasets/${data.train}/`)).length, 3, 'the sweep removes what was deleted, nothing else');
  } finally {
    await h.stop();
  }
});

test('a conversion abandoned after its directory was published, swept while the store is away, leaves that directory recorded until the store is back', async () => {
  // a process that died between publishing the converted dataset and recording it ready
  await store.datasets.insertValidating({ id: 'ds_abandoned', name: 'abandoned', source: { format: 'csv' } });
  await store.db.query(`UPDATE datasets SET heartbeat_at = now() - interval '5 minutes' WHERE id = 'ds_abandoned'`);
  await artifacts.writeDir(artifacts.datasetDir('ds_abandoned'), fileIn('features.bin'));
  assert.equal((await s3.keys('datasets/ds_abandoned/')).length, 2);

  await s3.stop();
  const leases = new ConversionLeases({ store, artifacts, log }, { intervalMs: 3_600_000, staleAfterMs: 1_000, orphanAfterMs: 3_600_000 });
  try {
    await leases.start();
  } finally {
    await leases.stop();
    await s3.start();
  }
  assert.equal((await store.datasets.get('ds_abandoned'))?.status, 'failed');
  assert.deepEqual(
    (await store.pendingDeletes.list(10)).map((p) => p.path),
    ['datasets/ds_abandoned'],
    'the directory the store could not remove is recorded, not forgotten',
  );
  assert.equal(await sweepPendingDeletes({ store, artifacts, log }), 1);
  assert.deepEqual(await s3.keys('datasets/ds_abandoned/'), []);
});
