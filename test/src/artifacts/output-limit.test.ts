import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { jsonTooDeep } from '../../../src/artifacts/json-depth.js';
import { DatasetWriter } from '../../../src/artifacts/ingest/dataset-writer.js';
import { IngestError } from '../../../src/artifacts/ingest/ingest-error.js';

test('jsonTooDeep counts brackets outside strings and names the first one too deep', () => {
  assert.equal(jsonTooDeep('{"x": [[1]], "y": "[[[[[["}', 3), undefined);
  assert.deepEqual(jsonTooDeep('{"x": [[[1]]]}', 3), { at: 8, maxDepth: 3 });
  assert.equal(jsonTooDeep('"\\"[[[[["', 1), undefined, 'an escaped quote does not end the string');
  assert.deepEqual(jsonTooDeep('['.repeat(1_000_000), 32), { at: 32, maxDepth: 32 });
});

test('DatasetWriter refuses the example that would pass the limit, and the files never hold more', () => {
  const dir = mkdtempSync(join(tmpdir(), 'writer-'));
  try {
    // 10 float32 values and a label: 44 bytes an example; 1000 bytes hold 22
    const w = new DatasetWriter({ dir, featureSize: 10, dtype: 'float32', limit: { datasetMaxBytes: 1000, quota: null, imageMaxPixels: 1 }, field: 'file' });
    let refused: unknown;
    try {
      for (let i = 0; i < 100; i++) {
        w.slot().fill(i);
        w.commit(0);
      }
    } catch (err) {
      refused = err;
    }
    assert.ok(refused instanceof IngestError);
    assert.equal(refused.code, 'dataset_too_large');
    assert.deepEqual(refused.location, { field: 'file', index: 22, expected: 1000, found: 23 * 44 });
    w.finish(null, 1);
    const bytes = readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
    assert.equal(bytes, 22 * 44);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DatasetWriter refuses what the quota has no room for, saying the room left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'writer-'));
  try {
    const w = new DatasetWriter({
      dir,
      featureSize: 4,
      dtype: 'uint8',
      limit: { datasetMaxBytes: 1 << 20, quota: { quotaBytes: 1000, usedBytes: 980 }, imageMaxPixels: 1 },
    });
    w.slot();
    w.commit(0);
    w.slot();
    w.commit(0);
    assert.throws(
      () => w.slot(),
      (err: IngestError) => err.code === 'storage_quota_exceeded' && err.location?.expected === 20 && /20 of 1000 bytes left/.test(err.message),
    );
    w.abort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
