/**
 * Model selection without target labels, through the service's sweeps: on MNIST -> MNIST rotated
 * 30 degrees (the rotated-digits case of bench/quality.ts), a grid sweep over adaptation methods
 * and their weights, and for each validator (an epoch metric that needs no target label, e.g.
 * valAccuracy, and the unsupervised validators once the training loop reports them) the target
 * accuracy of the trial it picks, against the oracle (the best trial by target labels) and the
 * defaults (each method at its default weight), with its Spearman rank correlation with target
 * accuracy across the trials. Prints a markdown table; writes nothing into docs/.
 *
 *   npm run bench:sweeps [-- --seeds 1,2] [--quick]
 *
 * It runs the whole service in this process (API, worker host, training children) on a temporary
 * data directory and a redis-server of its own, as test/helpers/harness.ts does. --quick is a tiny
 * configuration (a few hundred examples, one epoch, two methods and two weights) to try the script.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { freePort, startRedisServer } from '../src/queue/redis-server.js';
import { METHOD_DEFAULTS } from '../src/schemas/methods.js';
import { startService } from '../src/server.js';
import { OBJECTIVE_METRICS } from '../src/sweeps/objective.js';
import { num, spearman } from './stats.js';

const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

const args = parseArgs({ options: { seeds: { type: 'string', default: '1,2' }, quick: { type: 'boolean', default: false } } }).values;
const seeds = args.seeds.split(',').map(Number);
if (!seeds.every((s) => Number.isInteger(s) && s >= 0)) throw new Error(`--seeds is '${args.seeds}'; expected non-negative integers separated by commas`);
const quick = args.quick;
const size = quick
  ? { train: 400, test: 200, epochs: 1, methods: ['coral', 'mmd'], weights: [0.3, METHOD_DEFAULTS.weight] }
  : { train: 10_000, test: 2000, epochs: 5, methods: ['dann', 'coral', 'mmd'], weights: [0.1, 0.3, METHOD_DEFAULTS.weight, 3, 10] };
/** Metrics that never look at target labels and mean the same for every method (not a method's own loss): what a user without labels can select by. Extended as validators land in OBJECTIVE_METRICS. */
const LABEL_FREE = Object.keys(OBJECTIVE_METRICS).filter((m) => OBJECTIVE_METRICS[m].when === 'epoch' && !['loss', 'accuracy', 'coral', 'mmd'].includes(m));
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const dataDir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-bench-sweeps-'));
const redis = await startRedisServer(join(dataDir, 'redis'), { port: await freePort() });
const config = loadConfig({ DATA_DIR: dataDir, PORT: '0', REDIS_URL: redis.url, LOG_LEVEL: 'warn', MAX_ACTIVE_JOBS_PER_TENANT: '1000' });
const service = await startService(config, 'all', pino({ level: 'warn' }));
const url = service.url!;

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

async function ready(id: string): Promise<string> {
  for (;;) {
    const d = await call('GET', `/v1/datasets/${id}`);
    if (d.status === 'ready') return id;
    if (d.status === 'failed') throw new Error(`dataset ${id} failed: ${JSON.stringify(d.error)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const dataset = async (name: string, source: unknown) => ready((await call('POST', '/v1/datasets', { name, source })).id);

interface Row {
  validator: string;
  picked: number[];
  oracle: number[];
  defaults: number[];
  rho: number[];
}

try {
  // source: MNIST train; its labelled validation set: unrotated MNIST test (source domain, no target
  // labels); target: MNIST train rotated 30 degrees (its labels unused); targetTest: MNIST test rotated 30
  const train = await dataset('mnist-train', { builtin: 'mnist', split: 'train', limit: size.train });
  const test = await dataset('mnist-test', { builtin: 'mnist', split: 'test', limit: size.test });
  const target = await dataset('mnist-rot30', { from: train, transform: { rotate: 30 } });
  const targetTest = await dataset('mnist-test-rot30', { from: test, transform: { rotate: 30 } });
  const validation = test;

  const rows = new Map<string, Row>();
  for (const seed of seeds) {
    log(`seed ${seed}: sweeping ${size.methods.join(', ')} x weights ${size.weights.join(', ')}`);
    const created = await call('POST', '/v1/sweeps', {
      template: {
        type: 'domain_adaptation',
        model: { architecture: { kind: 'mlp', hidden: [128], activation: 'relu' } },
        method: { kind: 'coral' },
        data: { source: train, target, targetTest, validation },
        hyperparameters: { epochs: size.epochs, batchSize: 64, seed, optimizer: { name: 'adam', learningRate: 0.001 } },
      },
      parameters: { '/method/kind': { values: size.methods }, '/method/weight': { values: size.weights } },
      objective: { metric: 'targetAccuracy' },
      algorithm: 'grid',
      maxParallel: 2,
    });
    let sweep = created;
    while (sweep.status === 'running') {
      await new Promise((r) => setTimeout(r, 2000));
      sweep = await call('GET', `/v1/sweeps/${created.id}`);
    }
    log(`seed ${seed}: sweep ${sweep.id} ${sweep.status}; oracle ${sweep.best?.reason}`);
    const trials = await Promise.all(sweep.trials.map(async (t: any) => ({ ...t, job: await call('GET', `/v1/jobs/${t.jobId}`) })));
    const done = trials.filter((t: any) => t.job.status === 'succeeded');
    const acc = (t: any) => t.job.result.metrics.targetAccuracy as number;
    const oracle = Math.max(...done.map(acc));
    const defaults = mean(done.filter((t: any) => t.parameters['/method/weight'] === METHOD_DEFAULTS.weight).map(acc));
    for (const validator of LABEL_FREE) {
      const scored = done.filter((t: any) => typeof t.job.result.metrics[validator] === 'number');
      if (scored.length === 0) continue;
      const sign = OBJECTIVE_METRICS[validator].goal === 'maximize' ? 1 : -1;
      const value = (t: any) => sign * (t.job.result.metrics[validator] as number);
      const pick = scored.reduce((a: any, b: any) => (value(b) > value(a) ? b : a));
      const row = rows.get(validator) ?? { validator, picked: [], oracle: [], defaults: [], rho: [] };
      row.picked.push(acc(pick));
      row.oracle.push(oracle);
      row.defaults.push(defaults);
      row.rho.push(spearman(scored.map(value), scored.map(acc)));
      rows.set(validator, row);
    }
  }
  const pct = (xs: number[]) => `${num(mean(xs) * 100, 1)}%`;
  console.log(
    `MNIST -> rotated 30°, ${size.train} source examples, ${size.epochs} epochs, ${size.methods.join('/')} x weights ${size.weights.join('/')}, seeds ${seeds.join(', ')}${quick ? ' (--quick)' : ''}\n`,
  );
  console.log('| validator | picked: target accuracy | oracle (target labels) | defaults (weight 1) | picked - oracle | Spearman ρ with target accuracy |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows.values()) {
    const gap = mean(r.picked.map((p, i) => p - r.oracle[i])) * 100;
    console.log(`| ${r.validator} | ${pct(r.picked)} | ${pct(r.oracle)} | ${pct(r.defaults)} | ${num(gap, 1)} points | ${num(mean(r.rho), 2)} |`);
  }
  if (rows.size === 0) console.log('| (no trial reported a label-free validator) | | | | | |');
} finally {
  await service.stop();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
