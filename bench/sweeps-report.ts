/**
 * bench:sweeps' report (bench/sweeps.ts): from the trials of each case's sweeps, the markdown of its
 * section of docs/benchmarks.md. Its own module so that the figures of a run cut short can be
 * written from the trial lines it logged (bench/sweeps.ts --from-log).
 */
import os from 'node:os';
import { VALIDATOR_NAMES, VALIDATORS, type ValidatorName } from '../src/jobs/validators.js';
import { METHOD_DEFAULTS } from '../src/schemas/params.js';
import { validatorPick } from '../src/sweeps/selection.js';
import { writeSection } from './doc-sections.js';
import { ensembleAgreementPick } from './ensemble-agreement.js';
import { num, spearman } from './stats.js';

const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/** What the report says about a case. */
export interface CaseText {
  name: string;
  title: string;
  description: string;
}

/** The run as a whole: how it was started and what it covers. */
export interface RunInfo {
  command: string;
  seeds: number[];
  /** every case asked for, run or not */
  cases: string[];
  grid: { methods: string[]; weights: number[] };
  quick: boolean;
  out: string;
  /** the run's wall time in minutes; undefined when written from a log (the note says how the logged runs went) */
  minutes?: string;
  /** what the header adds, e.g. that a run was cut short and where */
  note?: string;
}

export interface Trial {
  method: string;
  weight: number;
  target: number;
  metrics: Record<string, number>;
}

export interface SeedRun {
  seed: number;
  trials: Trial[];
  noAdaptation: number;
  sweepId: string;
}

/** The trial a validator picks: what a sweep with it as objective selects (src/sweeps/selection.ts's validatorPick: models at chance passed over, errorBound's one-standard-error rule). */
function pick(trials: Trial[], validator: ValidatorName): Trial | undefined {
  const indexed = trials.map((t, index) => ({ t, index }));
  return (
    validatorPick(indexed, validator, {
      objective: ({ t }, metric) => (Number.isFinite(t.metrics[metric]) ? { metric, value: t.metrics[metric], epoch: null } : null),
      metrics: ({ t }) => t.metrics,
    })?.trial.t ?? undefined
  );
}

/**
 * What the report judges: the service's validators, each picking as a sweep with it as objective
 * would, and EnsV, a reading of the whole sweep that bench:sweeps computes from the trials' batch
 * predictions (`ensv` among a trial's metrics; bench/ensemble-agreement.ts), picking as its authors do.
 */
interface Reading {
  name: string;
  goal: 'minimize' | 'maximize';
  pick: (trials: Trial[]) => Trial | undefined;
}
const READINGS: Reading[] = [
  ...VALIDATOR_NAMES.map((v) => ({ name: v, goal: VALIDATORS[v].goal, pick: (trials: Trial[]) => pick(trials, v) })),
  {
    name: 'ensv',
    goal: 'maximize',
    pick: (trials) => (trials.length === 0 ? undefined : trials[ensembleAgreementPick(trials.map((t) => t.metrics.ensv ?? -Infinity))]),
  },
];

const pct = (x: number) => num(x * 100, 1);
const signed = (x: number) => `${x >= 0 ? '+' : ''}${num(x * 100, 1)}`;
const best = (trials: Trial[]) => trials.reduce((a, b) => (b.target > a.target ? b : a));

/** The seeds of the run that a case has no figures for (a run cut short, or a log that holds fewer seeds of it). */
const seedsLacking = (runs: SeedRun[], seeds: number[]) => seeds.filter((s) => !runs.some((r) => r.seed === s));

/** The markdown of one case over its seeds, and whether some validator reached the goal there. */
function report(c: CaseText, runs: SeedRun[], { grid: GRID, seeds }: RunInfo): { markdown: string; reached: string[] } {
  const lacking = seedsLacking(runs, seeds);
  const own = runs.map((r) => r.seed).join(', ');
  const fewerSeeds =
    lacking.length === 0
      ? ''
      : `**Seed${runs.length === 1 ? '' : 's'} ${own} only** (none of ${lacking.join(', ')}): every figure of this case is over ${runs.length === 1 ? 'that seed' : 'those seeds'}. `;
  const oracle = runs.map((r) => best(r.trials).target);
  const defaults = runs.map((r) => mean(r.trials.filter((t) => t.weight === METHOD_DEFAULTS.weight).map((t) => t.target)));
  const bestDefault = runs.map((r) => best(r.trials.filter((t) => t.weight === METHOD_DEFAULTS.weight)).target);
  // a configuration's mean target accuracy over some seeds (the indices of runs), and the configuration best by it: what target labels over many seeds would choose
  const configurations = GRID.methods.flatMap((m) => GRID.weights.map((w) => ({ m, w })));
  const meanOf = (m: string, w: number, seedsOf = runs.map((_, i) => i)) =>
    mean(seedsOf.flatMap((i) => runs[i].trials.filter((t) => t.method === m && t.weight === w).map((t) => t.target)));
  const bestConfiguration = (seedsOf?: number[]) => Math.max(...configurations.map(({ m, w }) => meanOf(m, w, seedsOf)).filter(Number.isFinite));
  const rows: string[] = [];
  const reached: string[] = [];
  for (const { name: v, goal, pick: pickBy } of READINGS) {
    // a validator added after some of the logged seeds ran is judged on the seeds that report it, and says so
    const scored = runs.flatMap((r, i) => (r.trials.some((t) => Number.isFinite(t.metrics[v])) ? [i] : []));
    const picks = scored.map((i) => pickBy(runs[i].trials));
    if (scored.length === 0 || picks.some((p) => p === undefined)) continue;
    const picked = picks.map((p) => p!.target);
    const rho = scored.map((i) => {
      const ts = runs[i].trials.filter((t) => Number.isFinite(t.metrics[v]));
      return spearman(
        ts.map((t) => t.metrics[v] * (goal === 'maximize' ? 1 : -1)),
        ts.map((t) => t.target),
      );
    });
    const gap = mean(picked.map((p, i) => p - oracle[scored[i]]));
    const overDefaults = mean(picked.map((p, i) => p - defaults[scored[i]]));
    const vsConfiguration = mean(picked) - bestConfiguration(scored);
    const only = scored.length < runs.length ? `; seed${scored.length === 1 ? '' : 's'} ${scored.map((i) => runs[i].seed).join(', ')} only` : '';
    if (gap >= -0.02 && overDefaults > 0) reached.push(only === '' ? v : `${v} (${only.slice(2)})`);
    const choices = picks.map((p) => `${p!.method} ${p!.weight}`).join('; ');
    rows.push(
      `| ${v} (${goal === 'maximize' ? '↑' : '↓'}${only}) | ${pct(mean(picked))} | ${signed(gap)} | ${signed(vsConfiguration)} | ${signed(overDefaults)} | ${num(mean(rho), 2)} (${rho.map((x) => num(x, 2)).join(', ')}) | ${choices} |`,
    );
  }
  // a bound whose best value bounds nothing (an error is at most 1), per seed: the service's best.reason says so
  const vacuous = VALIDATOR_NAMES.flatMap((v) => {
    const from = (VALIDATORS[v] as { vacuousFrom?: number }).vacuousFrom;
    const lows = runs.map((r) => pick(r.trials, v)?.metrics[v]);
    if (from === undefined || lows.some((x) => x === undefined || x < from)) return [];
    return [
      ` \`${v}\` is ${from} or more on every trial of every seed (its lowest ${lows.map((x) => num(x!, 3)).join(', ')}): it bounds nothing on this shift, ` +
        `and a sweep with it as objective says so in \`best.reason\`.`,
    ];
  });
  // every trial's target accuracy, mean over seeds: where the oracle and each validator's choices sit
  const grid = GRID.methods.map((m) => {
    const cells = GRID.weights.map((w) => {
      const xs = runs.flatMap((r) => r.trials.filter((t) => t.method === m && t.weight === w).map((t) => t.target));
      return xs.length === 0 ? '' : pct(mean(xs));
    });
    return `| ${m} | ${cells.join(' | ')} |`;
  });
  // DANN's weight chosen within DANN: by target labels (what bench:quality's 0.3 was) and by each validator
  const dann = runs.map((r) => r.trials.filter((t) => t.method === 'dann'));
  const dannRows = dann.every((ts) => ts.length > 0)
    ? [
        `| target labels (oracle) | ${dann.map((ts) => best(ts).weight).join(', ')} | ${pct(mean(dann.map((ts) => best(ts).target)))} |`,
        ...VALIDATOR_NAMES.filter((v) => dann.every((ts) => pick(ts, v) !== undefined)).map(
          (v) => `| ${v} | ${dann.map((ts) => pick(ts, v)!.weight).join(', ')} | ${pct(mean(dann.map((ts) => pick(ts, v)!.target)))} |`,
        ),
        `| default (${METHOD_DEFAULTS.weight}) | ${dann.map(() => METHOD_DEFAULTS.weight).join(', ')} | ${pct(mean(dann.map((ts) => ts.find((t) => t.weight === METHOD_DEFAULTS.weight)?.target ?? NaN)))} |`,
      ]
    : [];
  // how narrow the goal is here: the configurations whose mean over seeds is within 2 points of the oracle's
  const close = configurations
    .map(({ m, w }) => ({ m, w, gap: meanOf(m, w) - mean(oracle) }))
    .filter(({ gap }) => gap >= -0.02)
    .sort((a, b) => b.gap - a.gap);
  const narrow =
    ` Configurations within 2 points of the oracle on average over the seeds: ${close.length === 0 ? 'none' : close.map(({ m, w, gap }) => `${m} ${w} (${signed(gap)})`).join(', ')}` +
    ` (the oracle is each seed's best of ${GRID.methods.length * GRID.weights.length} trials, so it also gains from that seed's luck).`;
  const markdown = [
    `### ${c.title}`,
    '',
    c.description,
    '',
    fewerSeeds +
      `Oracle (best trial by target labels) ${pct(mean(oracle))}%; defaults (the methods at weight ${METHOD_DEFAULTS.weight}) ${pct(mean(defaults))}% on average, the best of them ${pct(mean(bestDefault))}%; ` +
      `no adaptation (the same training on the labelled source alone) ${pct(mean(runs.map((r) => r.noAdaptation)))}%. ` +
      `Goal (within 2 points of the oracle and above the defaults' mean): ${reached.length > 0 ? `reached by ${reached.join(', ')}` : '**not reached** by any validator'}.` +
      narrow +
      vacuous.join(''),
    '',
    '| validator | picked: target accuracy % | vs oracle (points) | vs best configuration (points) | vs defaults (points) | Spearman ρ with target accuracy (per seed) | picks (per seed) |',
    '| --- | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows,
    '',
    `Target accuracy % of every trial, mean over seeds:`,
    '',
    `| method | ${GRID.weights.map((w) => `weight ${w}`).join(' | ')} |`,
    `| --- | ${GRID.weights.map(() => '---:').join(' | ')} |`,
    ...grid,
    ...(dannRows.length > 0
      ? ['', "DANN's weight, chosen among the DANN trials:", '', '| chosen by | weight (per seed) | target accuracy % |', '| --- | --- | ---: |', ...dannRows]
      : []),
  ].join('\n');
  return { markdown, reached };
}

/** The section as it stands after the cases done so far: written after each case, so that a run cut short still leaves its figures. */
export async function writeReport(sections: { c: CaseText; runs: SeedRun[] }[], run: RunInfo): Promise<void> {
  const { command, seeds, cases, grid: GRID, quick, minutes } = run;
  const reports = sections.map(({ c, runs }) => ({ c, lacking: seedsLacking(runs, seeds), ...report(c, runs, run) }));
  const fewer = reports.filter((r) => r.lacking.length > 0);
  const fewerNote = fewer.length === 0 ? '' : ` (${fewer.map((r) => `${r.c.name}: not seeds ${r.lacking.join(', ')}`).join('; ')})`;
  const everywhere = READINGS.map((r) => r.name).filter((v) => reports.every((r) => r.reached.includes(v)));
  const missing = cases.filter((name) => !sections.some((s) => s.c.name === name));
  const body = `## Choosing the method and its weight without target labels

Produced by \`${command}\` (bench/sweeps.ts) on ${new Date().toISOString().slice(0, 10)}: the whole service in one process, tfjs ${process.env.TFJS_BACKEND ?? 'wasm'} backend in the
training children, ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown'}${minutes === undefined ? ')' : `, load ${os.loadavg()[0].toFixed(1)} at the end), ${minutes} minutes`}.${quick ? '\n\n**--quick**: a tiny configuration; the figures only show that the script runs.' : ''}${missing.length > 0 ? `\n\n**Cut short**: the cases ${missing.join(', ')} did not run.` : ''}${run.note ? `\n\n${run.note}` : ''}

Per case and seed, one grid sweep (\`POST /v1/sweeps\`) over \`/method/kind\` ∈ {${GRID.methods.join(', ')}} × \`/method/weight\` ∈ {${GRID.weights.join(', ')}}
(${GRID.methods.length * GRID.weights.length} trials; the seed is the jobs' \`hyperparameters.seed\`, the data are the same for every seed). Each trial reports the label-free
validators at every epoch (docs/methods.md, "Validators"); a validator's pick is the trial whose finished model scores best by it (models at chance passed over; \`errorBound\`'s by the one-standard-error rule,
whose ρ is still the bound's own), which is what a sweep with that validator as its \`objective\` selects. \`ensv\` (EnsV, Hu et al. 2024; bench/ensemble-agreement.ts)
is a reading of the whole sweep, not an epoch metric: each trial's finished model predicts the unlabelled target in a batch predict job, a trial scores its
agreement with the argmax of all the trials' mean prediction, and the pick is the highest (ties to the first trial), as its authors' code picks. "vs oracle" is the pick's target accuracy minus the best trial's (of its seed), "vs best configuration" minus the mean of the method and weight whose mean over
the seeds is highest (what target labels over many seeds would choose: it does not gain from one seed's luck as the oracle does), "vs defaults" minus the mean of the methods at
weight ${METHOD_DEFAULTS.weight}, all averaged over seeds ${seeds.join(', ')}${fewer.length === 0 ? '' : ', or those a case has where it says so'}. Spearman ρ: rank correlation of the validator (signed so that higher is better) with target
accuracy across one seed's trials; 1 would rank the trials as the target labels do.

**The goal of issue 14** (some validator picks within 2 points of the oracle and above the defaults on every case): ${
    everywhere.length > 0 && missing.length === 0
      ? `reached, by ${everywhere.join(', ')}${fewerNote}.`
      : `**not reached**: ${reports.map((r) => `${r.c.name}${r.lacking.length > 0 ? ` (not seeds ${r.lacking.join(', ')})` : ''}: ${r.reached.length > 0 ? r.reached.join(', ') : 'none'}`).join('; ')}${missing.length > 0 ? `; not run: ${missing.join(', ')}` : ''}.`
  }

${reports.map((r) => r.markdown).join('\n\n')}`;
  console.log(body);
  await writeSection(run.out, 'sweeps', body);
}
