/**
 * Model selection without target labels, through the service's sweeps (issue 14, item 3): on four
 * cases, a grid sweep over adaptation methods and their weights per seed, and for each label-free
 * validator (entropy, im, snd, mixval, dev, valAccuracy, errorBound: epoch metrics that never read a target label;
 * and EnsV, the trials' agreement with their ensemble on the unlabelled target, from batch predictions) the
 * target accuracy of the trial it picks, against the oracle (the best trial by target labels) and
 * the defaults (each method at its default weight), with its Spearman rank correlation with target
 * accuracy across the trials. Writes its own section of docs/benchmarks.md (bench/doc-sections.ts).
 *
 *   npm run bench:sweeps [-- --seeds 1,2,3] [--cases rotated,few-labels,shrunk,shrunk-cnn] [--quick] [--out docs/benchmarks.md]
 *   npm run bench:sweeps -- --from-log <stderr of earlier runs> [--cases ...] [--seeds ...] [--note "how they ran"]
 *
 * The cases: `rotated` (MNIST -> MNIST turned 30°, bench:quality's shift), `few-labels` (bench:quality's
 * few-label case: a CNN pretrained on digits 0-4 adapted to 5-9 from 10 labels per class and unlabelled
 * 5-9 digits), `shrunk` (MNIST -> digits shrunk to 75% and moved 2 pixels right and down) and
 * `shrunk-cnn` (the same shift and data, the service's CNN instead of the MLP: a dense layer on raw
 * pixels has no translation equivariance, so a moved digit is a new input to it; the convolutions and
 * pooling of a CNN share what they learn across positions). Small sizes, so that a case and seed
 * takes minutes to tens of minutes on a loaded 2-core machine.
 *
 * It runs the whole service in this process (API, worker host, training children) on a temporary
 * data directory and a redis-server of its own, as test/helpers/harness.ts does. --quick is a tiny
 * configuration (two methods, two weights, one epoch) to try the script.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { freePort, startRedisServer } from '../src/queue/redis-server.js';
import { METHOD_DEFAULTS } from '../src/schemas/params.js';
import { startService } from '../src/server.js';
import { errorBoundStandardError } from '../workers/training/error-bound.js';
import { ensembleAgreement } from './ensemble-agreement.js';
import { num } from './stats.js';
import { writeReport, type CaseText, type SeedRun } from './sweeps-report.js';

const CASES = ['rotated', 'few-labels', 'shrunk', 'shrunk-cnn'] as const;
type CaseName = (typeof CASES)[number];
const args = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    cases: { type: 'string', default: CASES.join(',') },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'docs/benchmarks.md' },
    'from-log': { type: 'string' },
    /** with --from-log: how the logged runs were made (machine load, wall time, which runs the log joins), for the report's header */
    note: { type: 'string' },
  },
}).values;
const seeds = args.seeds.split(',').map(Number);
if (!seeds.every((s) => Number.isInteger(s) && s >= 0)) throw new Error(`--seeds is '${args.seeds}'; expected non-negative integers separated by commas`);
const cases = args.cases.split(',') as CaseName[];
for (const c of cases) if (!CASES.includes(c)) throw new Error(`--cases names '${c}'; expected some of ${CASES.join(', ')}`);
const quick = args.quick;
// the command as the report shows it: --note's text is in the report already
const shown = process.argv.slice(2).filter((a, i, all) => a !== '--note' && all[i - 1] !== '--note' && !a.startsWith('--note='));
const command = `npm run bench:sweeps${shown.length > 0 ? ` -- ${shown.join(' ')}` : ''}`;
const GRID = quick
  ? { methods: ['coral', 'mmd'], weights: [0.3, METHOD_DEFAULTS.weight] }
  : { methods: ['dann', 'cdan', 'coral', 'mmd', 'mcc'], weights: [0.1, 0.3, METHOD_DEFAULTS.weight, 3] };
const VALIDATOR_SAMPLE = 500;
const PARALLEL = 3;
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

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

async function until<T>(read: () => Promise<T>, done: (x: T) => boolean): Promise<T> {
  for (;;) {
    const x = await read();
    if (done(x)) return x;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function dataset(name: string, source: unknown): Promise<string> {
  const { id } = await call('POST', '/v1/datasets', { name, source });
  const d = await until(
    () => call('GET', `/v1/datasets/${id}`),
    (d: any) => d.status !== 'validating',
  );
  if (d.status !== 'ready') throw new Error(`dataset ${name} is ${d.status}: ${JSON.stringify(d.error)}`);
  return id;
}

async function job(spec: unknown): Promise<any> {
  const { id } = await call('POST', '/v1/jobs', spec);
  const j = await until(
    () => call('GET', `/v1/jobs/${id}`),
    (j: any) => ['succeeded', 'failed', 'cancelled'].includes(j.status),
  );
  if (j.status !== 'succeeded') throw new Error(`job ${id} ended ${j.status}: ${JSON.stringify(j.error)}`);
  return j;
}

/**
 * A model's softmax over the unlabelled target dataset, one row per example in stored order, its
 * classes in name order: a batch predict job (`type: "predict"`), as a user would run one.
 */
async function targetProbabilities(modelId: string, target: string): Promise<number[][]> {
  const predict = await job({ type: 'predict', model: { base: modelId }, data: { input: target }, output: { format: 'jsonl' } });
  const res = await fetch(`${url}/v1/jobs/${predict.id}/predictions`);
  if (!res.ok) throw new Error(`GET /v1/jobs/${predict.id}/predictions answered ${res.status}`);
  return (await res.text())
    .trim()
    .split('\n')
    .map((line) => {
      const byName = new Map<string, number>(JSON.parse(line).classes.map((c: { class: string; probability: number }) => [c.class, c.probability]));
      return [...byName.keys()].sort().map((name) => byName.get(name)!);
    });
}

/** One case: what the report says about it, its sweep template for a seed (method and weight filled in by the grid) and the no-adaptation job. */
interface Case extends CaseText {
  /** the unlabelled target dataset, on which EnsV compares the trials (bench/ensemble-agreement.ts) */
  target: string;
  template(seed: number): Record<string, unknown>;
  /** the same model trained on the labelled source alone, scored on the target test set */
  noAdaptation(seed: number): Record<string, unknown>;
}

const SHIFT = { n: quick ? 400 : 4000, epochs: quick ? 1 : 4 };
const FEW = { n: quick ? 600 : 6000, epochs: quick ? 2 : 12, perClass: 10, classes: ['5', '6', '7', '8', '9'] };
/**
 * The test digits every case scores on: all of MNIST's test set, so that a trial's target accuracy
 * has a binomial standard error of about 0.5 points (1000 digits gave 1.2-1.6, which made the oracle,
 * the best of 20 noisy trials, an optimistic target). The shift cases take `validation` of them,
 * stratified, as the labelled source validation and the rest, shifted, as the target test.
 */
const TEST = { n: quick ? 1000 : 10000, validation: quick ? 200 : 1000 };
const SHIFTS = {
  rotated: { transform: { rotate: 30 }, what: 'turned 30° counter-clockwise' },
  shrunk: { transform: { scale: 0.75, translate: { x: 2, y: 2 } }, what: 'shrunk to 75% and moved 2 pixels right and down' },
};
/** The models the shift cases train from scratch, as the job spec and the report say them. */
const MODELS = {
  mlp: { architecture: { kind: 'mlp', hidden: [128], activation: 'relu' }, what: 'MLP 784-128-10 relu' },
  cnn: {
    architecture: { kind: 'cnn', filters: [16, 32], hidden: [64] },
    what: "The service's CNN (conv 3x3 16 and 32 filters, each with relu and 2x2 max pooling, dense 64 relu, 10 logits)",
  },
};
/** The cases that train a model from scratch on a shifted MNIST: which shift, which model. */
type ShiftCaseName = Exclude<CaseName, 'few-labels'>;
const SHIFT_CASES: Record<ShiftCaseName, { title: string; shift: keyof typeof SHIFTS; model: keyof typeof MODELS; why?: string }> = {
  rotated: { title: 'MNIST → MNIST rotated 30°', shift: 'rotated', model: 'mlp' },
  shrunk: { title: 'MNIST → digits shrunk to 75% and moved', shift: 'shrunk', model: 'mlp' },
  'shrunk-cnn': {
    title: 'MNIST → digits shrunk to 75% and moved, CNN',
    shift: 'shrunk',
    model: 'cnn',
    why:
      'The data and training of the MLP case `shrunk`, with a model whose convolutions apply the same filters at every position: ' +
      'a dense layer on raw pixels has to learn a moved digit anew.',
  },
};
/** What the report says about each case: pure, so that --from-log can write the report without the service. */
const TEXT: Record<CaseName, CaseText> = {
  rotated: shiftText('rotated'),
  shrunk: shiftText('shrunk'),
  'shrunk-cnn': shiftText('shrunk-cnn'),
  'few-labels': {
    name: 'few-labels',
    title: 'Few labels: digits 0-4 → 5-9, 10 labels per class',
    description:
      `Base: the CNN of bench:quality (c) (conv 3x3 16 and 32 filters with 2x2 max pooling, dense 128, relu) trained one epoch on the digits 0-4 ` +
      `of the first ${FEW.n} MNIST training digits (Adam lr 0.001, batch 64, seed 0, the same base for every seed). Source: 10 labelled examples of each of 5-9 ` +
      `(classes remapped to 0-4, the base's head reused); target: the 5-9 digits of the other half of the pool, unlabelled; source validation: ` +
      `10 labelled examples per class of that half; target test: the 5-9 digits of the first ${TEST.n} test digits. Adam lr 0.001, batch 10, ` +
      `${FEW.epochs} epochs (5 steps each), validatorSample ${VALIDATOR_SAMPLE}. The shift here is the one from few labels to the whole class distribution: ` +
      `adaptation methods act as semi-supervised regularisers.`,
  },
};

function shiftText(name: ShiftCaseName): CaseText {
  const { title, shift, model, why } = SHIFT_CASES[name];
  const { what } = SHIFTS[shift];
  const n = SHIFT.n;
  return {
    name,
    title,
    description:
      `Source: ${n / 2} MNIST training digits (labelled); target: ${n / 2} other training digits ${what}, unlabelled; source validation ` +
      `(data.validation, for dev, valAccuracy and errorBound): ${TEST.validation} upright test digits (stratified); target test: the other ` +
      `${TEST.n - TEST.validation} test digits ${what}. ` +
      `${MODELS[model].what} from scratch, Adam lr 0.001, batch 64, ${SHIFT.epochs} epochs, validatorSample ${VALIDATOR_SAMPLE}.${why === undefined ? '' : ` ${why}`}`,
  };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => String(i));

/** MNIST -> a transformed MNIST: disjoint source and target halves of the first training digits; of the test digits, a stratified source validation and the rest as target test. */
async function shiftCase(name: ShiftCaseName): Promise<Case> {
  const { n, epochs } = SHIFT;
  const shift = SHIFTS[SHIFT_CASES[name].shift].transform;
  const trainPool = await dataset(`${name}-train-pool`, { builtin: 'mnist', split: 'train', limit: n });
  const testPool = await dataset(`${name}-test-pool`, { builtin: 'mnist', split: 'test', limit: TEST.n });
  const part = (from: string, which: 'train' | 'validation', fraction: number, extra: Record<string, unknown> = {}) => ({
    from,
    transform: { split: { part: which, fraction }, ...extra },
  });
  const source = await dataset(`${name}-source`, part(trainPool, 'train', 0.5));
  const target = await dataset(`${name}-target`, part(trainPool, 'validation', 0.5, shift));
  const validation = await dataset(`${name}-validation`, part(testPool, 'validation', TEST.validation / TEST.n));
  const targetTest = await dataset(`${name}-target-test`, part(testPool, 'train', TEST.validation / TEST.n, shift));
  const model = { architecture: MODELS[SHIFT_CASES[name].model].architecture };
  const hp = (seed: number) => ({ epochs, batchSize: 64, seed, optimizer: { name: 'adam', learningRate: 0.001 } });
  return {
    ...TEXT[name],
    target,
    template: (seed) => ({
      type: 'domain_adaptation',
      model,
      method: { kind: 'coral' },
      data: { source, target, targetTest, validation },
      hyperparameters: { ...hp(seed), validatorSample: VALIDATOR_SAMPLE },
    }),
    noAdaptation: (seed) => ({ type: 'train', model, data: { train: source, validation, test: targetTest }, hyperparameters: hp(seed) }),
  };
}

/** bench:quality's few-label case as adaptation: a CNN pretrained on digits 0-4, 10 labels per class of 5-9 as the source, other 5-9 digits unlabelled as the target. */
async function fewLabelsCase(): Promise<Case> {
  const { n, epochs, perClass, classes: upper } = FEW;
  const trainPool = await dataset('few-train-pool', { builtin: 'mnist', split: 'train', limit: n });
  const lower = await dataset('few-0-4', { from: trainPool, transform: { classes: { keep: range(5) } } });
  const upperPool = await dataset('few-5-9-pool', { from: trainPool, transform: { classes: { keep: upper } } });
  const source = await dataset('few-5-9-labelled', { from: upperPool, transform: { split: { part: 'train', fraction: 0.5 }, subset: { perClass } } });
  const validation = await dataset('few-5-9-validation', {
    from: upperPool,
    transform: { split: { part: 'validation', fraction: 0.5 }, subset: { perClass } },
  });
  const target = await dataset('few-5-9-unlabelled', { from: upperPool, transform: { split: { part: 'validation', fraction: 0.5 } } });
  const targetTest = await dataset('few-5-9-test', {
    from: await dataset('few-test-pool', { builtin: 'mnist', split: 'test', limit: TEST.n }),
    transform: { classes: { keep: upper } },
  });
  const architecture = { kind: 'cnn', hidden: [128], filters: [16, 32] };
  // one pretrained base for every seed: the seeds vary the adaptation, not the starting point
  const pretrained = await job({
    type: 'train',
    model: { architecture },
    data: { train: lower },
    hyperparameters: { epochs: 1, batchSize: 64, seed: 0, optimizer: { name: 'adam', learningRate: 0.001 } },
  });
  const base = pretrained.result.modelId;
  const hp = (seed: number) => ({ epochs, batchSize: 10, seed, optimizer: { name: 'adam', learningRate: 0.001 } });
  return {
    ...TEXT['few-labels'],
    target,
    template: (seed) => ({
      type: 'domain_adaptation',
      model: { base },
      method: { kind: 'coral' },
      data: { source, target, targetTest, validation },
      hyperparameters: { ...hp(seed), validatorSample: VALIDATOR_SAMPLE },
    }),
    noAdaptation: (seed) => ({
      type: 'finetune',
      model: { base },
      strategy: { kind: 'full' },
      data: { train: source, validation, test: targetTest },
      hyperparameters: hp(seed),
    }),
  };
}

/** Runs one case's sweep and its no-adaptation job for one seed. */
async function runSeed(c: Case, seed: number): Promise<SeedRun> {
  const created = await call('POST', '/v1/sweeps', {
    template: c.template(seed),
    parameters: { '/method/kind': { values: GRID.methods }, '/method/weight': { values: GRID.weights } },
    // the oracle: what a user without target labels cannot do; every validator is read off the same trials
    objective: { metric: 'targetAccuracy' },
    algorithm: 'grid',
    maxParallel: PARALLEL,
  });
  const noAdaptation = job(c.noAdaptation(seed));
  const sweep = await until(
    () => call('GET', `/v1/sweeps/${created.id}`),
    (s: any) => s.status !== 'running',
  );
  const jobs = await Promise.all(sweep.trials.map(async (t: any) => ({ t, job: await call('GET', `/v1/jobs/${t.jobId}`) })));
  const failed = jobs.filter(({ job }) => job.status !== 'succeeded');
  if (failed.length > 0)
    log(`${c.name} seed ${seed}: ${failed.length} trials did not succeed: ${failed.map(({ job }) => `${job.id} ${job.status}`).join(', ')}`);
  const trials = jobs
    .filter(({ job }) => job.status === 'succeeded')
    .map(({ t, job }) => ({
      method: t.parameters['/method/kind'],
      weight: t.parameters['/method/weight'],
      target: job.result.metrics.targetAccuracy,
      metrics: job.result.metrics,
      modelId: job.result.modelId as string,
    }));
  const reference = (await noAdaptation).result.metrics.testAccuracy;
  const agreement = ensembleAgreement(await Promise.all(trials.map((t) => targetProbabilities(t.modelId, c.target))));
  trials.forEach((t, i) => (t.metrics = { ...t.metrics, ensv: agreement[i] }));
  // every trial as a JSON line on stderr, for other readings of the same run
  for (const t of trials) console.error(JSON.stringify({ case: c.name, seed, method: t.method, weight: t.weight, ...t.metrics }));
  console.error(JSON.stringify({ case: c.name, seed, noAdaptation: reference, sweepId: sweep.id }));
  log(
    `${c.name} seed ${seed}: sweep ${sweep.id} ${sweep.status}, ${trials.length} trials; no adaptation ${num(reference * 100, 1)}%, oracle ${sweep.best?.reason}`,
  );
  return { seed, trials, noAdaptation: reference, sweepId: sweep.id };
}

const runInfo = { command, seeds, cases, grid: GRID, quick, out: args.out };

/** Examples of each case's source validation set (data.validation). */
const VALIDATION_ROWS: Record<CaseName, number> = {
  rotated: TEST.validation,
  shrunk: TEST.validation,
  'shrunk-cnn': TEST.validation,
  'few-labels': FEW.perClass * FEW.classes.length,
};

/** A trial logged before jobs reported errorBoundStandardError: the figure the job now reports, from its valAccuracy and the case's validation rows. */
function withStandardError(name: CaseName, metrics: Record<string, number>): Record<string, number> {
  if (metrics.errorBound === undefined || metrics.errorBoundStandardError !== undefined) return metrics;
  return { ...metrics, errorBoundStandardError: errorBoundStandardError(metrics.valAccuracy, VALIDATION_ROWS[name]) };
}

/**
 * --from-log: the report of an earlier run from the lines it logged on stderr (a JSON line per
 * trial and one per seed with the no-adaptation accuracy), e.g. of a run cut short before its end.
 */
if (args['from-log'] !== undefined) {
  const lines = readFileSync(args['from-log'], 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const sections = cases.flatMap((name) => {
    const runs = seeds.flatMap((seed): SeedRun[] => {
      const mine = lines.filter((l) => l.case === name && l.seed === seed);
      const reference = mine.find((l) => typeof l.noAdaptation === 'number');
      const trials = mine
        .filter((l) => typeof l.method === 'string')
        .map(({ method, weight, ...metrics }) => ({ method, weight, target: metrics.targetAccuracy, metrics: withStandardError(name, metrics) }));
      return reference && trials.length > 0 ? [{ seed, trials, noAdaptation: reference.noAdaptation, sweepId: reference.sweepId }] : [];
    });
    return runs.length > 0 ? [{ c: TEXT[name], runs }] : [];
  });
  const done = sections.map((s) => `${s.c.name} seeds ${s.runs.map((r) => r.seed).join(', ')}`).join('; ');
  const note = `Written from the logged trials of earlier runs (\`--from-log\`): they hold ${done || 'nothing'}.${args.note ? ` ${args.note}` : ''}`;
  await writeReport(sections, { ...runInfo, note });
  log(`wrote ${args.out} from ${args['from-log']}: ${done}`);
  process.exit(0);
}

const dataDir = mkdtempSync(join(os.tmpdir(), 'tfjs-adapt-bench-sweeps-'));
const redis = await startRedisServer(join(dataDir, 'redis'), { port: await freePort() });
const config = loadConfig({
  DATA_DIR: dataDir,
  PORT: '0',
  REDIS_URL: redis.url,
  LOG_LEVEL: 'warn',
  MAX_ACTIVE_JOBS_PER_TENANT: '1000',
  WORKER_CONCURRENCY: String(PARALLEL),
});
const service = await startService(config, 'all', pino({ level: 'warn' }));
const url = service.url!;

try {
  const started = performance.now();
  const sections: { c: Case; runs: SeedRun[] }[] = [];
  for (const name of cases) {
    const c = name === 'few-labels' ? await fewLabelsCase() : await shiftCase(name);
    log(`${c.name}: sweeping ${GRID.methods.join(', ')} x weights ${GRID.weights.join(', ')} on seeds ${seeds.join(', ')}`);
    const runs: SeedRun[] = [];
    sections.push({ c, runs });
    for (const seed of seeds) {
      runs.push(await runSeed(c, seed));
      // after every seed, so that a run cut short still leaves its figures
      await writeReport(sections, { ...runInfo, minutes: ((performance.now() - started) / 60000).toFixed(0) });
      log(`wrote ${args.out}`);
    }
  }
} finally {
  await service.stop();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
