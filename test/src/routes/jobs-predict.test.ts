import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';
import { uploadDataset } from '../artifacts/fixtures.js';

/**
 * Batch prediction as a job, through the whole service (API, queue, worker host, training child):
 * a small MLP trained here on MNIST digits predicts every example of a dataset into a JSONL or CSV
 * file, row for row what POST /v1/models/{id}/predict answers for the same stored examples.
 */
let h: Harness;
let model: string;
let data: { train: string; test: string };

before(async () => {
  h = await startHarness();
  data = await registerMnist(h, 300, 120);
  const trained = await h.request(
    'POST',
    '/v1/jobs',
    trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 32, seed: 3, optimizer: { name: 'adam', learningRate: 0.003 } } }),
  );
  assert.equal(trained.status, 202, JSON.stringify(trained.body));
  const job = await waitForJob(h, trained.body.id, 300_000);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  model = job.result.modelId;
});
after(() => h?.stop());

const predictJob = (over: Record<string, unknown> = {}) => ({ type: 'predict', model: { base: model }, data: { input: data.test }, ...over });

async function download(jobId: string): Promise<{ status: number; type: string | null; length: string | null; text: string }> {
  const res = await fetch(`${h.url}/v1/jobs/${jobId}/predictions`);
  return { status: res.status, type: res.headers.get('content-type'), length: res.headers.get('content-length'), text: await res.text() };
}

/** The predict route's answer for the dataset's first `n` stored examples. */
async function routePredictions(n: number): Promise<any[]> {
  const page = await h.request('GET', `/v1/datasets/${data.test}/examples?offset=0&limit=${n}`);
  assert.equal(page.status, 200);
  const res = await h.request('POST', `/v1/models/${model}/predict`, { examples: page.body.data.map((e: any) => e.features) });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.predictions;
}

test('jsonl: one row per example in the dataset order, classes by falling probability summing to 1, as the predict route answers', async () => {
  const created = await h.request('POST', '/v1/jobs', predictJob());
  assert.equal(created.status, 202, JSON.stringify(created.body));
  assert.ok(created.body.estimate.outputBytes > 0, 'the estimate bounds the file');
  const job = await waitForJob(h, created.body.id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.equal(job.result.modelId, model);
  assert.equal(job.result.predictions.format, 'jsonl');
  assert.equal(job.result.predictions.rows, 120);
  assert.equal(job.result.predictions.url, `/v1/jobs/${job.id}/predictions`);
  assert.equal((await h.request('GET', `/v1/models/mdl_${job.id.slice(4)}`)).status, 404, 'a predict job stores no model');

  const file = await download(job.id);
  assert.equal(file.status, 200);
  assert.equal(file.type, 'application/x-ndjson');
  assert.equal(Number(file.length), job.result.predictions.bytes);
  assert.ok(job.result.predictions.bytes <= created.body.estimate.outputBytes, 'within the bound admitted');
  const rows = file.text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(rows.length, 120);
  rows.forEach((row, i) => {
    assert.equal(row.index, i);
    assert.equal(row.classes.length, 10);
    const p = row.classes.map((c: any) => c.probability);
    assert.deepEqual(
      p,
      [...p].sort((a: number, b: number) => b - a),
    );
    assert.ok(Math.abs(p.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-5);
  });
  // the same stored examples through the predict route: the same classes, the same probabilities
  const answered = await routePredictions(8);
  answered.forEach((a, i) => {
    assert.deepEqual(
      rows[i].classes.map((c: any) => c.class),
      a.classes.map((c: any) => c.class),
      `example ${i}`,
    );
    rows[i].classes.forEach((c: any, k: number) => assert.ok(Math.abs(c.probability - a.classes[k].probability) < 1e-5, `example ${i} class ${c.class}`));
  });
});

test('csv with topK: a header, then the top classes of each example in order', async () => {
  const created = await h.request('POST', '/v1/jobs', predictJob({ output: { format: 'csv', topK: 3 } }));
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const job = await waitForJob(h, created.body.id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const file = await download(job.id);
  assert.equal(file.status, 200);
  assert.match(file.type ?? '', /^text\/csv/);
  const [header, ...lines] = file.text.trimEnd().split('\n');
  assert.equal(header, 'index,class_1,probability_1,class_2,probability_2,class_3,probability_3');
  assert.equal(lines.length, 120);
  const answered = await routePredictions(5);
  lines.forEach((line, i) => {
    const cells = line.split(',');
    assert.equal(cells.length, 7);
    assert.equal(Number(cells[0]), i);
    const p = [cells[2], cells[4], cells[6]].map(Number);
    assert.ok(p[0] >= p[1] && p[1] >= p[2] && p[0] + p[1] + p[2] <= 1 + 1e-5, line);
    if (i < answered.length)
      assert.deepEqual(
        [cells[1], cells[3], cells[5]],
        answered[i].classes.slice(0, 3).map((c: any) => c.class),
      );
  });
});

test('cancel: a running predict job stops between batches, writes no file, and its predictions are a 409', async () => {
  // a larger set, so that the job is still running when the cancel lands; should it finish first, a larger one is tried
  for (const limit of [10_000, 60_000]) {
    const big = await h.request('POST', '/v1/datasets', { name: 'mnist-big', source: { builtin: 'mnist', split: limit > 10_000 ? 'train' : 'test', limit } });
    assert.equal(big.status, 201, JSON.stringify(big.body));
    const created = await h.request('POST', '/v1/jobs', predictJob({ data: { input: big.body.id } }));
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = created.body.id;
    const ended = (j: any) => ['succeeded', 'failed', 'cancelled'].includes(j.status);
    const seen = await waitFor(
      `job ${id} to run`,
      async () => {
        const j = (await h.request('GET', `/v1/jobs/${id}`)).body;
        return (j.status === 'running' || ended(j)) && j;
      },
      300_000,
    );
    if (ended(seen)) continue;
    const cancel = await h.request('POST', `/v1/jobs/${id}/cancel`);
    if (cancel.status === 409) continue;
    assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
    const job = await waitForJob(h, id, 300_000);
    if (job.status === 'succeeded') continue;
    assert.equal(job.status, 'cancelled', JSON.stringify(job.error));
    assert.equal(job.result, null);
    const file = await download(id);
    assert.equal(file.status, 409);
    assert.equal(JSON.parse(file.text).type.endsWith('not_ready'), true, file.text);
    assert.ok(!existsSync(join(h.dataDir, 'artifacts', 'jobs', id, 'predictions')), 'nothing was written');
    return;
  }
  assert.fail('every predict job finished before its cancel took effect');
});

test('a missing or incompatible dataset, and fields a predict job does not take, are 400s naming the field', async () => {
  const refused = async (spec: unknown, pointer: string, detail: RegExp) => {
    const res = await h.request('POST', '/v1/jobs', spec);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    const error = res.body.errors.find((e: any) => e.pointer === pointer);
    assert.ok(error, `no error at ${pointer}: ${JSON.stringify(res.body.errors)}`);
    assert.match(error.detail, detail);
  };
  await refused({ type: 'predict', model: { base: model }, data: {} }, '/data/input', /is required for a predict job/);
  await refused(predictJob({ data: { input: 'ds_nope' } }), '/data/input', /no dataset has the id "ds_nope"/);
  const small = await uploadDataset(h, { name: 'two features', format: 'csv' }, [{ field: 'file', content: 'x1,x2,label\n1,2,a\n3,4,b\n', filename: 'd.csv' }]);
  assert.equal(small.status, 'ready', JSON.stringify(small));
  await refused(predictJob({ data: { input: small.id } }), '/data/input', /model .* \[784\]|784/);
  await refused(predictJob({ data: { input: data.test, test: data.test } }), '/data/test', /is not used by a predict job/);
  await refused(
    predictJob({ hyperparameters: { epochs: 1, batchSize: 8, optimizer: { name: 'sgd', learningRate: 0.1 } } }),
    '/hyperparameters',
    /not used by a predict job/,
  );
  await refused({ ...trainSpec(data), output: { format: 'csv' } }, '/output', /applies to predict jobs only/);
  await refused({ type: 'predict', model: {}, data: { input: data.test } }, '/model/base', /is required for a predict job/);
  const wrongFormat = await h.request('POST', '/v1/jobs', predictJob({ output: { format: 'xml' } }));
  assert.equal(wrongFormat.status, 400);
  // a train job has no predictions to download
  const jobs = (await h.request('GET', '/v1/jobs?type=train')).body.data;
  const notPredict = await download(jobs[0].id);
  assert.equal(notPredict.status, 409);
  assert.equal((await download('job_unknown')).status, 404);
});

test('tfjs-adapt predict --dataset: runs the job, follows it, writes its file', async () => {
  const cli = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-cli-predict-job-'));
  try {
    const out = join(dir, 'predictions.csv');
    const args = [cli, 'predict', model, '--dataset', data.test, '--format', 'csv', '--top-k', '2', '--out', out, '--progress', 'none'];
    const { stderr } = await promisify(execFile)(process.execPath, args, { env: { PATH: process.env.PATH ?? '', TFJS_ADAPT_URL: h.url } });
    assert.match(stderr, /^job job_\w+$/m);
    assert.match(stderr, /wrote .*predictions\.csv \(120 rows, \d+ bytes\)/);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    assert.equal(lines[0], 'index,class_1,probability_1,class_2,probability_2');
    assert.equal(lines.length, 121);
    const refused = await promisify(execFile)(process.execPath, [cli, 'predict', model, '--dataset', data.test, '--format', 'xml'], {
      env: { PATH: process.env.PATH ?? '', TFJS_ADAPT_URL: h.url },
    }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    assert.ok(refused && refused.code === 2 && /--format "xml" is not valid/.test(refused.stderr), JSON.stringify(refused));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
