import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { IngestError } from '../../../src/artifacts/ingest/ingest-error.js';
import { IngestRunner } from '../../../src/artifacts/ingest/ingest-runner.js';

test('a conversion that needs more heap than its thread may have ends as resource_exhausted, and the next one runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'runner-'));
  // a tiny heap, so a 12 MB line of 3 million numbers cannot be parsed in it
  const runner = new IngestRunner({ concurrency: 1, maxHeapMb: 16 });
  const limit = { datasetMaxBytes: 1 << 30, quota: null, imageMaxPixels: 1 };
  try {
    writeFileSync(join(dir, 'big.jsonl'), `{"x": [${'0.5,'.repeat(3_000_000)}0.5], "y": 0}\n`);
    await assert.rejects(
      runner.run({ kind: 'jsonl', file: join(dir, 'big.jsonl'), outDir: dir, limit }),
      (err: IngestError) => err instanceof IngestError && err.code === 'resource_exhausted' && /16 MiB.*INGEST_MAX_HEAP_MB/.test(err.message),
    );
    writeFileSync(join(dir, 'small.jsonl'), '{"x": [1, 2], "y": 0}\n{"x": [3, 4], "y": 1}\n');
    const result = await runner.run({ kind: 'jsonl', file: join(dir, 'small.jsonl'), outDir: dir, limit });
    assert.equal(result.numExamples, 2);
  } finally {
    await runner.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
