import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { registerMnist, startHarness, trainSpec, waitFor, waitForJob, type Harness } from '../../helpers/harness.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

let h: Harness;
let data: { train: string; test: string };
let tmp: string;

// one attempt, so the corrupt-dataset job fails at once instead of after retries
before(async () => {
  h = await startHarness({ JOB_ATTEMPTS: '1' });
  // no test here is about learning: the smallest slices that still make epochs of several steps
  data = await registerMnist(h, 500, 100);
  tmp = mkdtempSync(join(tmpdir(), 'tfjs-adapt-cli-'));
});
after(async () => {
  await h?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a user would: its own process, talking HTTP to the service. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', TFJS_ADAPT_URL: h.url, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function specFile(name: string, spec: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify(spec));
  return file;
}

const quickSpec = (over: Record<string, unknown> = {}) =>
  trainSpec(data, { hyperparameters: { epochs: 2, batchSize: 64, seed: 4, optimizer: { name: 'adam', learningRate: 0.003 } }, ...over });

test('wrong command lines exit 2 and say what was wrong and what was expected', async () => {
  const unknown = await cli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"; expected one of submit, jobs, datasets, sweep, models/);

  const sub = await cli(['jobs', 'delete', 'job_x']);
  assert.equal(sub.code, 2);
  assert.match(sub.stderr, /unknown subcommand "delete" of "jobs"; expected one of list, get, cancel, follow/);

  const missing = await cli(['jobs', 'get']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing <job id>/);
  assert.match(missing.stderr, /usage: tfjs-adapt jobs get <job id>/);

  const misplaced = await cli(['jobs', 'list', '--follow']);
  assert.equal(misplaced.code, 2);
  assert.match(misplaced.stderr, /--follow does not apply to "jobs list"/);

  const notJson = await cli(['submit', specFile('bad.json', 'x').replace('bad.json', 'missing.json')]);
  assert.equal(notJson.code, 2);
  assert.match(notJson.stderr, /cannot read the spec .*missing\.json: ENOENT/);

  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /tfjs-adapt submit <spec\.json\|->/);
});

test('an unreachable service exits 1 and names the URL it tried', async () => {
  const r = await cli(['jobs', 'list', '--url', 'http://127.0.0.1:9']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach the service at http:\/\/127\.0\.0\.1:9 .*set --url or TFJS_ADAPT_URL/);
});

test('submit of an invalid spec exits 1 and lists each offending field by JSON pointer', async () => {
  const file = specFile(
    'invalid.json',
    quickSpec({ hyperparameters: { epochs: 0, batchSize: 64, optimizer: { name: 'sgd', learningRate: 0.1, momentun: 0.9 } } }),
  );
  const r = await cli(['submit', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '', 'no job id: nothing was created');
  assert.match(r.stderr, /POST \/v1\/jobs answered 400/);
  assert.match(r.stderr, /\/hyperparameters\/epochs: must be >= 1/);
  assert.match(r.stderr, /\/hyperparameters\/optimizer\/momentun: is not a known property/);
});

test('submit --follow prints the job id, draws a bar per epoch fed by SSE, prints the final metrics and exits 0', async () => {
  const r = await cli(['submit', specFile('ok.json', quickSpec()), '--follow', '--progress', 'bars']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const [id, summary, metrics] = r.stdout.trim().split('\n');
  assert.match(id, /^job_[A-Za-z0-9_-]+$/, 'the first line is the job id');
  const job = (await h.request('GET', `/v1/jobs/${id}`)).body;
  assert.equal(job.status, 'succeeded');
  assert.equal(summary, `succeeded  model ${job.result.modelId}`);
  assert.match(metrics, /testAccuracy 0\.\d+/);
  assert.match(r.stderr, /epoch 1\/2 \[[█░]+\] 100% \| step (\d+)\/\1 \| loss [\d.]+ {2}accuracy [\d.]+/);
  assert.match(r.stderr, /epoch 2\/2 \[[█░]+\] 100% \| step (\d+)\/\1/);

  // following a finished job replays its log; lines are what logs and pipes get
  const replay = await cli(['jobs', 'follow', id]);
  assert.equal(replay.code, 0);
  assert.deepEqual(
    replay.stderr
      .split('\n')
      .filter((l) => l.startsWith('epoch') || l.startsWith('status'))
      .map((l) => l.split('  ')[0]),
    ['status queued', 'status running (attempt 1)', 'epoch 1', 'epoch 2', 'status succeeded'],
  );

  const list = await cli(['jobs', 'list', '--status', 'succeeded']);
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^ID\s+STATUS\s+TYPE\s+PROGRESS\s+BACKEND\s+CREATED/);
  assert.match(list.stdout, new RegExp(`${id}\\s+succeeded\\s+train\\s+epoch 2/2 step \\d+/\\d+\\s+${job.backend}`));

  const got = await cli(['jobs', 'get', id]);
  assert.deepEqual(JSON.parse(got.stdout), job);

  const cancel = await cli(['jobs', 'cancel', id]);
  assert.equal(cancel.code, 1);
  assert.match(cancel.stderr, new RegExp(`answered 409 Job already finished: job ${id} is succeeded`));

  const dir = join(tmp, 'model');
  const dl = await cli(['models', 'download', job.result.modelId, dir]);
  assert.equal(dl.code, 0, dl.stderr);
  assert.equal(dl.stdout.trim(), join(dir, 'model.json'));
  const model = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const served = (await h.request('GET', `/v1/models/${job.result.modelId}/model.json`)).body;
  assert.deepEqual(model, served);
  const floats = model.weightsManifest.flatMap((g: any) => g.weights).reduce((n: number, w: any) => n + w.shape.reduce((a: number, b: number) => a * b, 1), 0);
  assert.equal(statSync(join(dir, 'weights.bin')).size, floats * 4, 'weights.bin holds every weight of the manifest');
});

test('a job that fails makes submit --follow exit 1 with its error', async () => {
  const ds = await h.request('POST', '/v1/datasets', { name: 'to-corrupt', source: { builtin: 'mnist', split: 'train', limit: 100 } });
  truncateSync(join(h.config.artifactsDir, 'datasets', ds.body.id, 'labels.bin'), 0);
  const r = await cli(['submit', specFile('fails.json', trainSpec({ train: ds.body.id })), '--follow']);
  assert.equal(r.code, 1);
  const [id, line] = r.stdout.trim().split('\n');
  const job = (await h.request('GET', `/v1/jobs/${id}`)).body;
  assert.equal(job.status, 'failed');
  assert.equal(line, `failed  ${job.error.code}: ${job.error.message}${job.error.param ? ` (at ${job.error.param})` : ''}`);
  assert.match(r.stderr, /status failed/);
});

test('jobs cancel stops a running job; following it then exits 1', async () => {
  // never ends by itself on any machine: it is cancelled
  const spec = quickSpec({ hyperparameters: { epochs: 1000, batchSize: 16, seed: 1, optimizer: { name: 'sgd', learningRate: 0.01 } } });
  const sub = await cli(['submit', specFile('long.json', spec)]);
  assert.equal(sub.code, 0, sub.stderr);
  const id = sub.stdout.trim();
  await waitFor('the job to run', async () => (await h.request('GET', `/v1/jobs/${id}`)).body.status === 'running', 60_000);
  const cancel = await cli(['jobs', 'cancel', id]);
  assert.equal(cancel.code, 0, cancel.stderr);
  assert.equal(cancel.stdout.trim(), `${id} is stopping (it ends within one batch)`);
  const follow = await cli(['jobs', 'follow', id, '--progress', 'none']);
  assert.equal(follow.code, 1);
  assert.match(follow.stdout, /^cancelled/);
  assert.equal((await waitForJob(h, id)).status, 'cancelled');
});

test("sweep create --wait prints the id, then the trials table, the best trial and the validators' picks; list, get and cancel", async () => {
  const file = specFile('sweep.json', {
    // with a validation set its trials report valAccuracy, a validator without target labels
    template: trainSpec(data, {
      data: { ...data, validation: data.test },
      hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'adam', learningRate: 0.003 } },
    }),
    parameters: { '/hyperparameters/optimizer/learningRate': { values: [0.001, 0.003] } },
    objective: { metric: 'testAccuracy' },
    algorithm: 'grid',
    maxParallel: 2,
  });
  const created = await cli(['sweep', 'create', file, '--wait']);
  assert.equal(created.code, 0, created.stderr);
  const [id, summary, head] = created.stdout.split('\n');
  assert.match(id, /^swp_[0-9a-f]{24}$/);
  assert.match(summary, /succeeded {2}grid, 2 trials, maximize testAccuracy/);
  assert.match(head, /#\s+JOB\s+STATUS\s+\/hyperparameters\/optimizer\/learningRate\s+TESTACCURACY/);
  assert.match(created.stdout, /best: trial [01] \(job_[0-9a-f]+\): trial [01] has the highest testAccuracy/);
  assert.match(created.stdout, /\nvalidators without target labels pick: valAccuracy -> trial [01]( \(the best\))?\n$/);
  const list = await cli(['sweep', 'list']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`${id}\\s+succeeded\\s+2/2\\s+testAccuracy`));
  const json = JSON.parse((await cli(['sweep', 'get', id, '--json'])).stdout);
  assert.equal(json.best.jobId, json.trials[json.best.index].jobId);
  const again = await cli(['sweep', 'cancel', id]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /409.*already finished|Sweep already finished/);
});

test('datasets list shows the registered datasets', async () => {
  const r = await cli(['datasets', 'list']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${data.train}\\s+mnist-train\\s+ready\\s+500\\s+10\\s+\\[784\\]`));
  const json = JSON.parse((await cli(['datasets', 'list', '--json'])).stdout);
  assert.ok(json.data.some((d: any) => d.id === data.test));
});

test('datasets upload sends the file with its name and format; --wait reports ready, or the error and where it is', async () => {
  const rows = ['label,a,b,c'];
  for (let i = 0; i < 30; i++) rows.push(`${i % 2 ? 'dog' : 'cat'},${i % 2},${(i * 7) % 5},${i / 10}`);
  const good = join(tmp, 'pets.csv');
  writeFileSync(good, `${rows.join('\n')}\n`);
  const up = await cli(['datasets', 'upload', good, '--name', 'pets', '--wait']);
  assert.equal(up.code, 0, up.stderr);
  const id = up.stdout.trim();
  assert.match(id, /^ds_/);
  assert.match(up.stderr, /^ready: 30 examples, 2 classes, featureShape \[3\]/);
  const ds = (await h.request('GET', `/v1/datasets/${id}`)).body;
  assert.equal(ds.name, 'pets');
  assert.equal(ds.source.upload, 'csv', 'the format came from the file name');
  assert.equal(ds.source.files[0].filename, 'pets.csv');
  assert.deepEqual(ds.classCounts, [15, 15]);

  const ragged = join(tmp, 'ragged.csv');
  writeFileSync(ragged, `${[...rows.slice(0, 4), 'dog,1', ...rows.slice(4)].join('\n')}\n`);
  const bad = await cli(['datasets', 'upload', ragged, '--name', 'ragged', '--wait']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^failed: ragged: .*\(.*line 5.*\)/m);

  const field = await cli(['datasets', 'upload', good, '--name', 'pets', '--field', 'labelColumn=species', '--field', 'colour=red']);
  assert.equal(field.code, 1);
  assert.match(field.stderr, /\/colour: is not a known field/);

  const unknown = await cli(['datasets', 'upload', join(tmp, 'notes.txt'), '--name', 'x']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /cannot tell the format of .*notes\.txt from its name: give --format csv\|jsonl\|idx\|images/);
});

test('--url and --token (or TFJS_ADAPT_URL and TFJS_ADAPT_TOKEN) pick the service and send Authorization: Bearer', async () => {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: [], hasMore: false, nextCursor: null }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    assert.equal((await cli(['jobs', 'list'], { TFJS_ADAPT_URL: url, TFJS_ADAPT_TOKEN: 'from-env' })).code, 0);
    assert.equal((await cli(['jobs', 'list', '--url', url, '--token', 'from-flag'], { TFJS_ADAPT_TOKEN: 'from-env' })).code, 0);
    assert.deepEqual(
      seen.map((hd) => hd.authorization),
      ['Bearer from-env', 'Bearer from-flag'],
    );
  } finally {
    server.close();
  }
});
