/**
 * A worker host fetching a job's files from the object store (checkoutTask) against a real S3
 * server (s3rver): real checkpoints of a real run are published by one host, some of them damaged
 * in the store, and another host, which has none of them, checks the job out. A damaged one is
 * passed over with a warning (a retry would get the same bytes) and the child resumes from the
 * whole one; a store that does not answer stays a retryable artifacts_unavailable.
 */
import assert from 'node:assert/strict';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openArtifacts, type Artifacts } from '../../../src/artifacts/artifacts.js';
import { featureCachesDir } from '../../../src/artifacts/feature-cache.js';
import { checkoutTask } from '../../../src/artifacts/task-artifacts.js';
import { loadConfig } from '../../../src/config.js';
import { TrainingError, type TrainingResult, type TrainingTask } from '../../../src/jobs/task.js';
import { runTraining } from '../../../workers/training/training-loop.js';
import { BUCKET, startS3, type S3Server } from '../../helpers/s3.js';
import { makeTask, mnistDataset, recorder, tempDir, trainSpec } from '../../workers/training/fixtures.js';

let s3: S3Server;
/** the host that trained the job and published its checkpoints */
let a: Artifacts;
let task: TrainingTask;
let trained: TrainingResult;
const opened: Artifacts[] = [];

const JOB = 'job_damaged';
/** 300 examples in batches of 32: 10 steps an epoch, a checkpoint at the end of each */
const checkpoint = (epoch: number) => `epoch-${String(epoch).padStart(4, '0')}-step-${String(epoch * 10).padStart(8, '0')}`;
/** a checkpoint's file in the object store, under ARTIFACTS_URL's prefix (`artifacts`) */
const objectKey = (epoch: number, file: string) => `jobs/${JOB}/checkpoints/${checkpoint(epoch)}/${file}`;
const described = (epoch: number, file: string) => `s3://${BUCKET}/artifacts/${objectKey(epoch, file)}`;

/** A host with its own empty artifacts directory on the store `endpoint` (s3rver's unless told). */
async function host(endpoint = s3.env.S3_ENDPOINT): Promise<Artifacts> {
  const config = loadConfig({ DATA_DIR: await tempDir(), ...s3.env, S3_ENDPOINT: endpoint });
  const artifacts = openArtifacts(config);
  opened.push(artifacts);
  return artifacts;
}

before(async () => {
  s3 = await startS3();
  // the AWS SDK takes its credentials from the environment (its default chain)
  Object.assign(process.env, s3.env);
  a = await host();
  const train = await mnistDataset(path.join(a.root, 'datasets'), 'ds_train', 'train', 0, 300);
  await a.publish(train.dir);
  task = makeTask(a.root, JOB, trainSpec({ epochs: 4 }), { train }, { jobId: JOB, checkpointsDir: a.checkpointsDir(JOB) });
  trained = await runTraining(task, () => undefined);
  assert.equal(trained.outcome, 'succeeded');
  const names = await readdir(task.checkpointsDir);
  assert.deepEqual(names, [1, 2, 3, 4].map(checkpoint));
  for (const name of names) await a.publish(path.join(task.checkpointsDir, name));
});

after(async () => {
  for (const artifacts of opened) artifacts.close();
  await s3?.destroy();
});

/** Every figure that depends on what was learned (not on timing). */
const learned = (metrics: Record<string, number>) =>
  Object.fromEntries(Object.entries(metrics).filter(([k]) => k !== 'samplesPerSecond' && k !== 'epochSeconds'));

test('checkpoints damaged in the store are passed over with a warning naming the object; the whole one is fetched and the child resumes from it', async () => {
  // epoch 4: its manifest cut short; epoch 3: weights.bin of another size than its manifest says; epoch 2: optimizer.bin gone
  const manifest = await s3.text(objectKey(4, '.manifest.json'));
  // cut after a colon: V8 then says 'Unexpected end of JSON input', the message of the chaos run's loop
  await s3.put(objectKey(4, '.manifest.json'), manifest.slice(0, manifest.indexOf('"name":') + 7));
  const weights = await readFile(path.join(task.checkpointsDir, checkpoint(3), 'weights.bin'));
  await s3.put(objectKey(3, 'weights.bin'), weights.subarray(0, weights.length - 4));
  await s3.remove(objectKey(2, 'optimizer.bin'));

  const b = await host();
  const checkout = await checkoutTask(b, task);
  try {
    const expected = [
      [checkpoint(2), `${described(2, 'optimizer.bin')} is missing; its manifest lists it`],
      [checkpoint(3), `${described(3, 'weights.bin')} has ${weights.length - 4} bytes; its manifest says ${weights.length}`],
      [checkpoint(4), `${described(4, '.manifest.json')} is not valid JSON (Unexpected end of JSON input)`],
    ];
    assert.equal(checkout.warnings.length, 3, checkout.warnings.join('\n'));
    for (const [name, problem] of expected) {
      assert.ok(
        checkout.warnings.some((w) => w.startsWith(`checkpoint ${name} is damaged in the object store and was passed over: `) && w.includes(problem)),
        `a warning names ${name} and says "${problem}": ${checkout.warnings.join('\n')}`,
      );
    }
    const local = checkout.task.checkpointsDir;
    assert.equal(local, b.checkpointsDir(JOB));
    assert.deepEqual(await readdir(local), [checkpoint(1)], 'only the whole checkpoint is here: nothing of a damaged one, not even a temp directory');
    const files = await readdir(path.join(task.checkpointsDir, checkpoint(1)));
    assert.deepEqual((await readdir(path.join(local, checkpoint(1)))).sort(), files.sort());
    for (const f of files) {
      assert.ok(
        (await readFile(path.join(local, checkpoint(1), f))).equals(await readFile(path.join(task.checkpointsDir, checkpoint(1), f))),
        `${f} fetched whole`,
      );
    }

    // the training child on this host resumes from it and ends as the uninterrupted run did
    const second = recorder();
    const resumed = await runTraining(checkout.task, second.report);
    assert.ok(resumed.outcome === 'succeeded' && trained.outcome === 'succeeded');
    assert.ok(
      second.messages.some((m) => m.type === 'log' && m.message.startsWith(`resuming from checkpoint ${checkpoint(1)}: `)),
      JSON.stringify(second.messages.filter((m) => m.type === 'log')),
    );
    assert.deepEqual(learned(resumed.metrics), learned(trained.metrics));
    const saved = (t: TrainingTask) => readFile(path.join(t.modelDir, 'weights.bin'));
    assert.ok((await saved(checkout.task)).equals(await saved(task)), 'the same weights, bit for bit');
  } finally {
    await checkout.release();
  }
});

test("a feature cache damaged in the store is passed over with a warning; the base's other cache is fetched", async () => {
  const base = a.modelDir('base_x');
  await a.writeDir(base, (dir) => writeFile(path.join(dir, 'model.json'), '{}'));
  const caches = featureCachesDir(a.featuresRoot(), 'base_x', 'ds_train');
  for (const key of ['k_whole', 'k_damaged']) {
    await a.writeDir(path.join(caches, key), async (dir) => {
      await writeFile(path.join(dir, 'meta.json'), JSON.stringify({ key }));
      await writeFile(path.join(dir, 'features.bin'), new Uint8Array(64).fill(7));
    });
  }
  // a manifest that parses but names a file outside its directory
  const damaged = 'features/base_x/ds_train/k_damaged/.manifest.json';
  await s3.put(damaged, JSON.stringify({ files: [{ name: '../k_whole/features.bin', bytes: 64 }] }));

  const b = await host();
  const checkout = await checkoutTask(b, { ...task, jobId: 'job_features', baseModelId: 'base_x', baseModelDir: base, featuresRoot: a.featuresRoot() });
  try {
    assert.equal(checkout.warnings.length, 1, checkout.warnings.join('\n'));
    assert.match(checkout.warnings[0], /^feature cache k_damaged is damaged in the object store and was passed over: /);
    assert.ok(
      checkout.warnings[0].includes(`s3://${BUCKET}/artifacts/${damaged} lists a file as {"name":"../k_whole/features.bin","bytes":64}`),
      checkout.warnings[0],
    );
    const local = featureCachesDir(b.featuresRoot(), 'base_x', 'ds_train');
    assert.deepEqual(await readdir(local), ['k_whole']);
    assert.deepEqual(await readFile(path.join(local, 'k_whole', 'features.bin')), Buffer.from(new Uint8Array(64).fill(7)));
  } finally {
    await checkout.release();
  }
});

test('a base model damaged in the store fails the job at once: invalid_model naming the model, the field and the object, not retried', async () => {
  for (const id of ['base_whole', 'base_damaged']) {
    await a.writeDir(a.modelDir(id), async (dir) => {
      await writeFile(path.join(dir, 'model.json'), '{}');
      await writeFile(path.join(dir, 'weights.bin'), new Uint8Array(16));
    });
  }
  await s3.remove('models/base_damaged/weights.bin');
  const damaged = {
    ...task,
    jobId: 'job_bases',
    baseModelIds: ['base_whole', 'base_damaged'],
    baseModelDirs: [a.modelDir('base_whole'), a.modelDir('base_damaged')],
  };
  for (const [t, param] of [
    [{ ...damaged, baseModelIds: undefined, baseModelDirs: undefined, baseModelId: 'base_damaged', baseModelDir: a.modelDir('base_damaged') }, '/model/base'],
    [damaged, '/model/bases/1'],
  ] as const) {
    const b = await host();
    await assert.rejects(checkoutTask(b, t), (err: unknown) => {
      assert.ok(err instanceof TrainingError, String(err));
      assert.equal(err.code, 'invalid_model', err.message);
      assert.equal(err.param, param);
      assert.equal(err.name, 'UnrecoverableError', 'final: BullMQ does not retry it');
      assert.ok(
        err.message.startsWith(`base model base_damaged is damaged in the object store: s3://${BUCKET}/artifacts/models/base_damaged/weights.bin is missing; `),
        err.message,
      );
      return true;
    });
    assert.deepEqual(
      await readdir(path.join(b.root, 'models')).catch(() => []),
      param === '/model/base' ? [] : ['base_whole'],
      'nothing of the damaged one left here',
    );
  }
});

test('a dataset or base model the store holds not at all fails the job at once, as a damaged one does: dataset_corrupt or invalid_model naming it', async () => {
  await a.writeDir(a.datasetDir('ds_gone'), async (dir) => {
    await writeFile(path.join(dir, 'features.bin'), new Uint8Array(16));
  });
  await s3.remove('datasets/ds_gone/.manifest.json');
  const train = task.data.train;
  assert.ok(train);
  const noDataset = { ...task, jobId: 'job_gone', data: { ...task.data, train: { ...train, id: 'ds_gone', dir: a.datasetDir('ds_gone') } } };
  const noBase = { ...task, jobId: 'job_gone', baseModelId: 'base_never', baseModelDir: a.modelDir('base_never') };
  for (const [t, code, param, what] of [
    [noDataset, 'dataset_corrupt', '/data/train', 'dataset ds_gone'],
    [noBase, 'invalid_model', '/model/base', 'base model base_never'],
  ] as const) {
    await assert.rejects(checkoutTask(await host(), t), (err: unknown) => {
      assert.ok(err instanceof TrainingError, String(err));
      assert.equal(err.code, code, err.message);
      assert.equal(err.param, param);
      assert.equal(err.name, 'UnrecoverableError', 'final: BullMQ does not retry it');
      assert.ok(err.message.startsWith(`${what} is not in the object store: s3://${BUCKET}/artifacts/`), err.message);
      assert.match(err.message, /has no manifest/);
      return true;
    });
  }
});

/** checkoutTask's failure on the host `c`: expected a retryable artifacts_unavailable. */
async function assertUnavailable(c: Artifacts, why: RegExp): Promise<void> {
  await assert.rejects(checkoutTask(c, task), (err: unknown) => {
    assert.ok(err instanceof TrainingError, String(err));
    assert.equal(err.code, 'artifacts_unavailable', err.message);
    assert.equal(err.name, 'TrainingError', 'retryable (a final one is an UnrecoverableError for BullMQ)');
    assert.match(err.message, why);
    return true;
  });
}

test("a checkpoint's manifest the store answers 503 for is the store away, not damage: retryable artifacts_unavailable", async () => {
  // s3rver behind a proxy that answers 503 for every checkpoint's manifest, as a store in trouble answers
  const target = new URL(s3.env.S3_ENDPOINT);
  const proxy: Server = createServer((req, res) => {
    if (req.method === 'GET' && /\/checkpoints\/[^/?]+\/\.manifest\.json(\?|$)/.test(req.url ?? '')) {
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>ServiceUnavailable</Code><Message>try later</Message></Error>');
      return;
    }
    const forward = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
  try {
    const c = await host(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
    await assertUnavailable(c, /the object store did not give .*\/checkpoints\/epoch-\d+-step-\d+\/\.manifest\.json/);
  } finally {
    proxy.closeAllConnections();
    await new Promise((ok) => proxy.close(ok));
  }
});

test('a store that cannot be reached while the checkpoints are listed stays a retryable artifacts_unavailable', async () => {
  // the dataset is here already, so the first request is the listing of the job's checkpoints
  const c = await host();
  await cp(a.datasetDir('ds_train'), c.datasetDir('ds_train'), { recursive: true });
  await s3.stop();
  try {
    await assertUnavailable(c, /could not fetch the job's datasets.*the object store did not list .*\/checkpoints\//);
  } finally {
    await s3.start();
  }
});
