import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { SweepLauncher } from '../../../src/sweeps/launcher.js';
import { startApi, type Api } from '../../helpers/api.js';
import { registerMnist, trainSpec } from '../../helpers/harness.js';

/** Sweeps through the API alone (no worker host: trials stay queued unless a test ends them in the store). */
let api: Api;
let data: { train: string; test: string };

before(async () => {
  // a trial of 1000 epochs is over JOB_MAX_FLOPS; one of 2 is far below
  api = await startApi({ MAX_ACTIVE_JOBS_PER_TENANT: '20', JOB_MAX_FLOPS: '1e10' });
  data = await registerMnist(api, 200, 50);
});
after(() => api?.stop());

const sweepSpec = (over: Record<string, unknown> = {}) => ({
  template: trainSpec(data),
  parameters: { '/hyperparameters/optimizer/learningRate': { min: 0.001, max: 0.1, scale: 'log', gridPoints: 3 } },
  objective: { metric: 'testAccuracy' },
  algorithm: 'grid',
  maxParallel: 2,
  ...over,
});

/** What a worker host records for a finished trial (the tests below play the host: no worker runs here). */
async function finishTrial(jobId: string, metrics: Record<string, unknown>): Promise<void> {
  const { store } = api.deps;
  await store.jobs.started(jobId, 1);
  await store.jobs.epochMetrics(jobId, 1, 1, { loss: 1, accuracy: 0.5 });
  await store.jobs.succeeded(jobId, 1, { modelId: `mdl_${jobId.slice(4)}`, metrics: { loss: 1, ...metrics } }, async () => undefined);
}

const launcherOf = (a: Api) => new SweepLauncher({ ...a.deps, log: pino({ level: 'silent' }), maxActiveJobs: 20, webhookAllowedHosts: [] });

function assertProblem(res: { status: number; body: any }, pointer: string, detail: RegExp) {
  assert.equal(res.status, 400, JSON.stringify(res.body));
  const error = res.body.errors?.find((e: any) => e.pointer === pointer);
  assert.ok(error, `expected an error at ${pointer}, got ${JSON.stringify(res.body.errors)}`);
  assert.match(error.detail, detail);
}

describe('creating a sweep', () => {
  test('202 with every trial planned, maxParallel of them queued as jobs of the sweep', async () => {
    const res = await api.request('POST', '/v1/sweeps', sweepSpec());
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const s = res.body;
    assert.match(s.id, /^swp_[0-9a-f]{24}$/);
    assert.equal(res.headers.get('location'), `/v1/sweeps/${s.id}`);
    assert.equal(s.status, 'running');
    assert.equal(s.goal, 'maximize');
    assert.equal(s.spec.maxTrials, 3);
    assert.equal(typeof s.spec.seed, 'number', 'the drawn seed is shown, so the sweep can be replayed');
    assert.deepEqual(
      s.trials.map((t: any) => t.parameters['/hyperparameters/optimizer/learningRate']),
      [0.001, 0.01, 0.1],
    );
    assert.deepEqual(
      s.trials.map((t: any) => t.status),
      ['queued', 'queued', 'pending'],
    );
    assert.equal(s.trials[2].jobId, null);
    assert.equal(s.best, null);
    assert.equal(s.estimate.trials, 3);
    const job = (await api.request('GET', `/v1/jobs/${s.trials[1].jobId}`)).body;
    assert.equal(job.sweepId, s.id);
    assert.equal(job.spec.hyperparameters.optimizer.learningRate, 0.01);
    assert.ok(job.estimate, 'the trial keeps the estimate it was admitted with');
    assert.ok(await api.deps.queue.queue.getJob(job.id), 'the trial is in the queue');
    const trials = (await api.request('GET', `/v1/jobs?sweepId=${s.id}`)).body.data;
    assert.equal(trials.length, 2);
    // trials queue behind the tenant's other jobs as the API's jobs do, not at the front (priority 1)
    const [others] = await api.deps.store.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM jobs WHERE sweep_id IS DISTINCT FROM $1 AND status NOT IN ('succeeded', 'failed', 'cancelled') AND tenant = $2`,
      [s.id, 'default'],
    );
    const priorities = await Promise.all(s.trials.slice(0, 2).map(async (t: any) => (await api.deps.queue.queue.getJob(t.jobId))!.opts.priority));
    assert.deepEqual(priorities, [others.n + 1, others.n + 2]);
  });

  test('a bad value is a 400 naming the parameter and the trial; nothing is created', async () => {
    const before = (await api.request('GET', '/v1/sweeps')).body.data.length;
    assertProblem(
      await api.request('POST', '/v1/sweeps', sweepSpec({ parameters: { '/method/weight': { values: [0.1, 1] } } })),
      '/parameters/~1method~1weight',
      /goes through "method", which the template does not have/,
    );
    assertProblem(
      await api.request('POST', '/v1/sweeps', sweepSpec({ parameters: { '/hyperparameters/batchSize': { values: [64, 0] } } })),
      '/parameters/~1hyperparameters~1batchSize',
      /trial 1 .* invalid: \/hyperparameters\/batchSize expected integer to be greater or equal to 1/,
    );
    assertProblem(
      await api.request('POST', '/v1/sweeps', sweepSpec({ parameters: { '/data/train': { values: [data.train, 'ds_nope'] } } })),
      '/parameters/~1data~1train',
      /trial 1/,
    );
    assertProblem(
      await api.request('POST', '/v1/sweeps', sweepSpec({ template: trainSpec({ train: 'ds_nope', test: data.test }) })),
      '/template/data/train',
      /trial 0/,
    );
    assertProblem(await api.request('POST', '/v1/sweeps', sweepSpec({ objective: { metric: 'snd-ish' } })), '/objective/metric', /expected one of/);
    assertProblem(await api.request('POST', '/v1/sweeps', sweepSpec({ objective: { metric: 'valLoss' } })), '/objective/metric', /needs data.validation/);
    assertProblem(
      await api.request(
        'POST',
        '/v1/sweeps',
        sweepSpec({ algorithm: 'random', parameters: { '/hyperparameters/optimizer/learningRate': { min: 0.001, max: 0.1 } } }),
      ),
      '/maxTrials',
      /required for a random search/,
    );
    assertProblem(await api.request('POST', '/v1/sweeps', sweepSpec({ earlyTermination: { kind: 'median' } })), '/earlyTermination', /reported every epoch/);
    // the schema's own checks come first, as for a job
    const bad = await api.request('POST', '/v1/sweeps', sweepSpec({ maxParallel: 0 }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].pointer, '/maxParallel');
    assert.equal((await api.request('GET', '/v1/sweeps')).body.data.length, before, 'no sweep was created');
  });

  test('a trial over the job limits is refused at the parameter that makes it so', async () => {
    assertProblem(
      await api.request('POST', '/v1/sweeps', sweepSpec({ parameters: { '/hyperparameters/epochs': { values: [1, 1000] } } })),
      '/parameters/~1hyperparameters~1epochs',
      /trial 1 .*JOB_MAX_FLOPS.*expected at most \d+ epochs/,
    );
  });
});

describe('the whole sweep is bounded by its cost', () => {
  test('trials that add up past SWEEP_MAX_FLOPS are refused, naming the limit', async () => {
    const small = await startApi({ SWEEP_MAX_FLOPS: '1e8' });
    try {
      const d = await registerMnist(small, 200, 50);
      const res = await small.request('POST', '/v1/sweeps', { ...sweepSpec(), template: trainSpec(d) });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.type, 'urn:tfjs-adapt:problem:sweep_too_large');
      assert.match(res.body.errors[0].detail, /3 trials add up to .*\(SWEEP_MAX_FLOPS\)/);
    } finally {
      await small.stop();
    }
  });
});

describe('replay, listing, events, cancel', () => {
  test('the same seed draws the same trials; another seed others', async () => {
    const random = (seed: number) =>
      sweepSpec({
        algorithm: 'random',
        maxTrials: 4,
        seed,
        maxParallel: 1,
        parameters: {
          '/hyperparameters/optimizer/learningRate': { min: 0.001, max: 0.1, scale: 'log' },
          '/model/architecture/hidden/0': { min: 8, max: 64, type: 'int' },
        },
      });
    const a = (await api.request('POST', '/v1/sweeps', random(7))).body;
    const b = (await api.request('POST', '/v1/sweeps', random(7))).body;
    const c = (await api.request('POST', '/v1/sweeps', random(8))).body;
    const params = (s: any) => s.trials.map((t: any) => t.parameters);
    assert.equal(a.trials.length, 4);
    assert.deepEqual(params(b), params(a));
    assert.notDeepEqual(params(c), params(a));
    const job = (await api.request('GET', `/v1/jobs/${a.trials[0].jobId}`)).body;
    assert.equal(job.spec.model.architecture.hidden[0], a.trials[0].parameters['/model/architecture/hidden/0']);
    for (const s of [a, b, c]) assert.equal((await api.request('POST', `/v1/sweeps/${s.id}/cancel`)).status, 200);
  });

  test('list pages newest first; another tenant sees nothing', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await api.request('POST', '/v1/sweeps', sweepSpec({ maxParallel: 1 }))).body.id);
    const first = (await api.request('GET', '/v1/sweeps?limit=2')).body;
    assert.deepEqual(
      first.data.map((s: any) => s.id),
      [ids[2], ids[1]],
    );
    assert.equal(first.hasMore, true);
    const next = (await api.request('GET', `/v1/sweeps?limit=2&after=${first.nextCursor}`)).body;
    assert.equal(next.data[0].id, ids[0]);
    const running = (await api.request('GET', '/v1/sweeps?status=cancelled&limit=50')).body.data;
    assert.ok(running.every((s: any) => s.status === 'cancelled'));
    for (const id of ids) await api.request('POST', `/v1/sweeps/${id}/cancel`);
    assert.equal((await api.request('GET', '/v1/sweeps/swp_000000000000000000000000')).status, 404);
  });

  test('cancel ends the sweep and its queued trials, launches nothing more; a second cancel is 409', async () => {
    const s = (await api.request('POST', '/v1/sweeps', sweepSpec())).body;
    const res = await api.request('POST', `/v1/sweeps/${s.id}/cancel`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'cancelled');
    assert.ok(res.body.finishedAt);
    assert.deepEqual(
      res.body.trials.map((t: any) => t.status),
      ['cancelled', 'cancelled', 'pending'],
    );
    for (const t of res.body.trials.slice(0, 2)) assert.equal(await api.deps.queue.queue.getJob(t.jobId), undefined, 'taken off the queue');
    assert.equal((await api.request('POST', `/v1/sweeps/${s.id}/cancel`)).status, 409);
    const events = (await api.request('GET', `/v1/sweeps/${s.id}/events`)).body.data;
    assert.deepEqual(
      events.map((e: any) => e.seq),
      events.map((_: any, i: number) => i + 1),
    );
    assert.deepEqual(
      events.filter((e: any) => e.type === 'status').map((e: any) => e.data.status),
      ['running', 'cancelled'],
    );
    assert.equal(events.filter((e: any) => e.type === 'trial').length, 2, 'two launches');
  });

  test("a trial that ended while no host could launch the next: reconciliation's advance does it, and the sweep ends with its best", async () => {
    const s = (await api.request('POST', '/v1/sweeps', sweepSpec({ maxParallel: 1 }))).body;
    const { store } = api.deps;
    const launcher = launcherOf(api);
    // the host "dies" before its after-job hook
    const finish = (jobId: string, testAccuracy: number) => finishTrial(jobId, { testAccuracy });
    await finish(s.trials[0].jobId, 0.7);
    assert.equal((await store.sweeps.get(s.id))!.trials[1].status, 'pending', 'nothing launched it yet');
    await launcher.advanceAll();
    await launcher.advanceAll();
    let now = (await store.sweeps.get(s.id))!;
    assert.deepEqual(
      now.trials.map((t) => t.status),
      ['succeeded', 'queued', 'pending'],
      'advanced once, however often it is called',
    );
    await finish(now.trials[1].jobId!, 0.9);
    await launcher.advance(s.id);
    now = (await store.sweeps.get(s.id))!;
    await finish(now.trials[2].jobId!, 0.8);
    await launcher.advance(s.id);
    const done = (await api.request('GET', `/v1/sweeps/${s.id}`)).body;
    assert.equal(done.status, 'succeeded');
    assert.equal(done.best.index, 1);
    assert.equal(done.best.jobId, now.trials[1].jobId);
    assert.deepEqual(done.validatorPicks, [], 'its trials report no label-free validator');
    assert.deepEqual(done.best.objective, { metric: 'testAccuracy', value: 0.9, epoch: 1 });
    assert.match(done.best.reason, /trial 1 has the highest testAccuracy \(0.9 at epoch 1\) of the 3 trials.*trial 2/);
    const events = (await api.request('GET', `/v1/sweeps/${s.id}/events?limit=100`)).body.data;
    assert.equal(events.at(-1).data.status, 'succeeded');
    assert.equal(events.filter((e: any) => e.type === 'trial' && e.data.objective).length, 3, "each trial's end announced once");
  });

  test('the best passes over a model no better than chance on the source validation, and its reason names it', async () => {
    const s = (await api.request('POST', '/v1/sweeps', sweepSpec({ maxParallel: 1 }))).body;
    const launcher = launcherOf(api);
    const classes = Array.from({ length: 10 }, (_, i) => String(i));
    // trial 1 scores best but predicts one class: 10.3% on the labelled source validation, as a collapsed model does
    const reported = [
      { testAccuracy: 0.7, valAccuracy: 0.8, classes },
      { testAccuracy: 0.9, valAccuracy: 0.103, classes },
      { testAccuracy: 0.8, valAccuracy: 0.75, classes },
    ];
    for (const [i, metrics] of reported.entries()) {
      await finishTrial((await api.deps.store.sweeps.get(s.id))!.trials[i].jobId!, metrics);
      await launcher.advance(s.id);
    }
    const done = (await api.request('GET', `/v1/sweeps/${s.id}`)).body;
    assert.equal(done.status, 'succeeded');
    assert.equal(done.best.index, 2);
    assert.match(
      done.best.reason,
      /trial 2 has the highest testAccuracy \(0.8 at epoch 1\) of the 2 trials that reported it; the next best, trial 0, has 0.7; passed over as no better than chance on the source validation \(valAccuracy within 0.05 of 1\/classes\): trial 1$/,
    );
    assert.equal(done.trials[1].objective.value, 0.9, 'the trial keeps its own objective; only the pick passes it over');
  });

  test("an errorBound sweep picks, within the lowest bound's standard error, the trial with the lowest valLoss", async () => {
    const template = {
      type: 'domain_adaptation',
      model: { architecture: { kind: 'mlp', hidden: [8] } },
      method: { kind: 'coral' },
      data: { source: data.train, target: data.test, validation: data.test },
      hyperparameters: { epochs: 1, batchSize: 50, optimizer: { name: 'adam', learningRate: 0.001 } },
    };
    const res = await api.request(
      'POST',
      '/v1/sweeps',
      sweepSpec({ template, parameters: { '/method/weight': { values: [0.1, 1, 3] } }, objective: { metric: 'errorBound' }, maxParallel: 1 }),
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const launcher = launcherOf(api);
    // 50 validation labels: bounds 0.02 apart are a label apart, the standard error about 0.05
    const reported = [
      { errorBound: 0.18, errorBoundStandardError: 0.054, valLoss: 0.74, valAccuracy: 0.82, im: 0.5 },
      { errorBound: 0.2, errorBoundStandardError: 0.057, valLoss: 0.69, valAccuracy: 0.8, im: 0.4 },
      { errorBound: 0.3, errorBoundStandardError: 0.065, valLoss: 0.6, valAccuracy: 0.7, im: 0.9 },
    ];
    for (const [i, metrics] of reported.entries()) {
      await finishTrial((await api.deps.store.sweeps.get(res.body.id))!.trials[i].jobId!, metrics);
      await launcher.advance(res.body.id);
    }
    const done = (await api.request('GET', `/v1/sweeps/${res.body.id}`)).body;
    assert.equal(done.status, 'succeeded');
    assert.equal(done.best.index, 1, 'trial 2 has the lowest valLoss but lies outside the standard error');
    assert.deepEqual(done.best.objective, { metric: 'errorBound', value: 0.2, epoch: 1 });
    assert.match(
      done.best.reason,
      /^trial 1 has the lowest valLoss \(0.69\) of the 2 trials within one standard error \(0.054\) of the lowest errorBound \(trial 0, 0.18 at epoch 1\).*one-standard-error rule\); its errorBound is 0.2$/,
    );
    // what each validator the trials report would pick, by the same rules: errorBound agrees with best, im and valAccuracy do not
    const jobs = done.trials.map((t: { jobId: string }) => t.jobId);
    assert.deepEqual(done.validatorPicks, [
      { validator: 'im', index: 2, jobId: jobs[2], value: 0.9 },
      { validator: 'valAccuracy', index: 0, jobId: jobs[0], value: 0.82 },
      { validator: 'errorBound', index: 1, jobId: jobs[1], value: 0.2 },
    ]);
  });
});
