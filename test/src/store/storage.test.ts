import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import type { JobSpec } from '../../../src/schemas/job.js';
import { storageUsed } from '../../../src/store/storage.js';
import { openStore } from '../../../src/store/store.js';
import { freshDataDir } from '../../helpers/data-dir.js';

const spec: JobSpec = {
  type: 'train',
  model: { architecture: { kind: 'mlp', hidden: [8] } },
  data: { train: 'ds_x' },
  hyperparameters: { epochs: 1, batchSize: 8, optimizer: { name: 'sgd', learningRate: 0.1 } },
};

const ready = {
  numExamples: 1,
  featureShape: [1],
  featureDtype: 'uint8' as const,
  imageShape: null,
  numClasses: 1,
  classes: ['a'],
  classCounts: [1],
  preprocessing: { scale: 1, offset: 0 },
};

test("a tenant uses the bytes of its ready datasets, its models and its jobs' checkpoints, and nothing of another tenant", async () => {
  const dir = await freshDataDir('tfjs-adapt-storage-');
  const store = await openStore({ dataDir: dir });
  try {
    await store.datasets.insertReady({ id: 'ds_a', name: 'a', source: {}, ...ready, dir: '/x', bytes: 1000 }, 'ta');
    await store.datasets.insertValidating({ id: 'ds_v', name: 'v', source: {} }, 'ta');
    await store.datasets.markReady('ds_v', { ...ready, dir: '/v', bytes: 200 });
    await store.datasets.insertReady({ id: 'ds_b', name: 'b', source: {}, ...ready, dir: '/y', bytes: 5000 }, 'tb');
    await store.jobs.create({ id: 'job_a', spec, tenant: 'ta' }, { maxActive: 100 });
    await store.checkpoints.add(store.db, 'job_a', { epoch: 1, step: 1, attempt: 1, metrics: {}, path: '/c', bytes: 30 });
    const model = {
      name: 'm',
      status: 'ready' as const,
      jobId: null,
      baseModelId: null,
      datasetIds: {},
      metrics: null,
      inputShape: null,
      classes: null,
      preprocessing: null,
      dir: '/m',
    };
    await store.models.insert(store.db, { id: 'mdl_a', ...model, bytes: 4 }, 'ta');
    assert.equal(await storageUsed(store.db, 'ta'), 1000 + 200 + 30 + 4);
    assert.equal(await storageUsed(store.db, 'tb'), 5000);
    await store.datasets.delete(store.db, 'ds_a');
    assert.equal(await storageUsed(store.db, 'ta'), 200 + 30 + 4);
    assert.equal(await storageUsed(store.db, 'nobody'), 0);
    // a predict job's file, recorded in its result, counts while the job is kept and goes with it
    const predict = { type: 'predict' as const, model: { base: 'mdl_a' }, data: { input: 'ds_v' } };
    await store.jobs.create({ id: 'job_p', spec: predict, tenant: 'ta' }, { maxActive: 100 });
    const t = await store.jobs.started('job_p', 1);
    assert.ok(t);
    const predictions = { format: 'jsonl' as const, rows: 3, bytes: 700, url: '/v1/jobs/job_p/predictions' };
    assert.ok(await store.jobs.succeeded('job_p', 1, { modelId: 'mdl_a', metrics: {}, predictions }, () => Promise.resolve()));
    assert.equal(await storageUsed(store.db, 'ta'), 200 + 30 + 4 + 700);
    await store.jobs.discard('job_p');
    assert.equal(await storageUsed(store.db, 'ta'), 200 + 30 + 4);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
