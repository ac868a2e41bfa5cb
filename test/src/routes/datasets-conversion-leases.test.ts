import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Artifacts } from '../../../src/artifacts/artifacts.js';
import { ConversionLeases } from '../../../src/artifacts/ingest/conversion-leases.js';
import { openStore } from '../../../src/store/store.js';
import { loadConfig } from '../../../src/config.js';
import { startApi } from '../../helpers/api.js';
import { freshDataDir } from '../../helpers/data-dir.js';

/** A file in a new directory, both last changed ageMs ago. */
const touch = (path: string, ageMs = 0) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, 'partial');
  const at = new Date(Date.now() - ageMs);
  utimesSync(path, at, at);
  utimesSync(join(path, '..'), at, at);
};

test('after a crash mid-conversion, the next start fails the dataset as interrupted and removes its leftovers, and nothing live', async () => {
  const dataDir = await freshDataDir('tfjs-adapt-leases-');
  // what a process killed mid-conversion leaves: the row, the raw upload, a half-built directory
  const store = await openStore({ dataDir });
  const artifacts = new Artifacts(loadConfig({ DATA_DIR: dataDir }).artifactsDir);
  const crashed = await store.datasets.insertValidating({ id: 'ds_crashed', name: 'crashed', source: { format: 'csv' } });
  await store.db.query(`UPDATE datasets SET heartbeat_at = now() - interval '5 minutes' WHERE id = $1`, [crashed.id]);
  touch(join(artifacts.uploadDir(crashed.id), 'data.csv'));
  touch(join(`${artifacts.datasetDir(crashed.id)}.tmp-123-456`, 'features.bin'));
  // another API process converting right now: renewed moments ago
  await store.datasets.insertValidating({ id: 'ds_elsewhere', name: 'elsewhere', source: { format: 'csv' } });
  touch(join(artifacts.uploadDir('ds_elsewhere'), 'data.csv'));
  // model uploads cut off by a crash hours ago, and one still arriving
  touch(join(artifacts.uploadDir('mdl_old'), 'weights.bin'), 2 * 3_600_000);
  touch(join(artifacts.uploadDir('mdl_arriving'), 'weights.bin'));
  await store.close();

  const second = await startApi({}, { dataDir });
  try {
    const failed = (await second.request('GET', `/v1/datasets/${crashed.id}`)).body;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error.code, 'interrupted');
    assert.match(failed.error.message, /upload it again/);
    assert.ok(!existsSync(artifacts.uploadDir(crashed.id)), 'the raw upload is gone');
    assert.ok(!existsSync(`${artifacts.datasetDir(crashed.id)}.tmp-123-456`), 'the half-built directory is gone');
    assert.ok(!existsSync(artifacts.uploadDir('mdl_old')), 'an upload untouched for hours is gone');

    assert.equal((await second.request('GET', '/v1/datasets/ds_elsewhere')).body.status, 'validating', 'a renewed conversion is left alone');
    assert.ok(existsSync(artifacts.uploadDir('ds_elsewhere')));
    assert.ok(existsSync(artifacts.uploadDir('mdl_arriving')), 'an upload still arriving is left alone');
  } finally {
    await second.stop();
  }
});

test('a conversion this process holds is renewed past the stale time; released and not finished, it is swept', async () => {
  const dir = await freshDataDir('tfjs-adapt-leases-');
  const store = await openStore({ dataDir: dir });
  const artifacts = new Artifacts(join(dir, 'artifacts'));
  const leases = new ConversionLeases({ store, artifacts, log: pino({ level: 'silent' }) }, { intervalMs: 100, staleAfterMs: 700, orphanAfterMs: 3_600_000 });
  try {
    await store.datasets.insertValidating({ id: 'ds_held', name: 'held', source: { format: 'csv' } });
    leases.hold('ds_held');
    await leases.start();
    await sleep(1_500);
    assert.equal((await store.datasets.get('ds_held'))!.status, 'validating', 'renewed while held');
    leases.release('ds_held');
    await sleep(1_500);
    const swept = (await store.datasets.get('ds_held'))!;
    assert.equal(swept.status, 'failed');
    assert.equal(swept.error?.code, 'interrupted');
  } finally {
    await leases.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a model import left validating by a stopped process is failed as interrupted at the next start, its fetched files removed', async () => {
  const dataDir = await freshDataDir('tfjs-adapt-leases-');
  // what a process killed mid-import leaves: the validating row, unrenewed, and the files fetched so far
  const store = await openStore({ dataDir });
  const artifacts = new Artifacts(loadConfig({ DATA_DIR: dataDir }).artifactsDir);
  const importing = (id: string) => ({
    id,
    name: 'imported model',
    status: 'validating' as const,
    jobId: null,
    baseModelId: null,
    datasetIds: {},
    metrics: null,
    inputShape: null,
    classes: null,
    preprocessing: null,
    dir: artifacts.modelDir(id),
    source: { url: 'https://models.example/mobilenet/model.json' },
  });
  await store.models.insert(store.db, importing('mdl_crashed'));
  await store.db.query(`UPDATE models SET heartbeat_at = now() - interval '5 minutes' WHERE id = 'mdl_crashed'`);
  touch(join(artifacts.uploadDir('mdl_crashed'), 'model.json'));
  // an import another API process is running right now: renewed moments ago
  await store.models.insert(store.db, importing('mdl_elsewhere'));
  touch(join(artifacts.uploadDir('mdl_elsewhere'), 'model.json'));
  await store.close();

  const second = await startApi({}, { dataDir });
  try {
    const failed = (await second.request('GET', '/v1/models/mdl_crashed')).body;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error.code, 'interrupted');
    assert.equal(failed.error.pointer, '/source/url');
    assert.match(failed.error.message, /stopped before it finished.*import it again/);
    assert.ok(!existsSync(artifacts.uploadDir('mdl_crashed')), 'the fetched files are gone');

    assert.equal((await second.request('GET', '/v1/models/mdl_elsewhere')).body.status, 'validating', 'a renewed import is left alone');
    assert.ok(existsSync(artifacts.uploadDir('mdl_elsewhere')));
  } finally {
    await second.stop();
  }
});
