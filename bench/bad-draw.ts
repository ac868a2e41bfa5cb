/**
 * Catch the bad draw (issue 14 item 4): domain adaptation on a shift the quality benchmark does
 * not use (MNIST -> MNIST turned by --degrees, 45 by default), the service's CNN, a few epochs of
 * Adam from a source-only base, over seeds; for each run and each epoch, the target-test accuracy
 * (which a user would not have) beside the label-free validators (which they would), and what
 * each validator would have chosen. Small subsets, so that it runs in minutes on a loaded machine.
 *
 *   npm run build --silent && node dist/bench/bad-draw.js [--seeds 1,2,3] [--methods dann,coral,mmd] [--degrees 45]
 *
 * Prints a markdown table per run and a JSON line per epoch (for docs/methods.md).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Architecture, Hyperparameters, JobSpec } from '../src/schemas/job.js';
import type { AdaptationMethod } from '../src/schemas/methods.js';
import { VALIDATOR_NAMES, VALIDATORS, type ValidatorName } from '../src/jobs/validators.js';
import type { TrainingData, TrainingMessage, TrainingTask } from '../src/jobs/task.js';
import { loadDataset } from '../workers/training/data.js';
import { errorBound } from '../workers/training/error-bound.js';
import { evaluate } from '../workers/training/evaluate.js';
import { loadModel } from '../workers/training/models.js';
import { featureLayerOf } from '../workers/training/network.js';
import { runTraining } from '../workers/training/training-loop.js';
import { EpochValidators } from '../workers/training/validators.js';
import { mnistDataset, readMnist } from './mnist.js';

process.env.TFJS_BACKEND ||= 'wasm';
const args = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    methods: { type: 'string', default: 'dann,coral,mmd' },
    degrees: { type: 'string', default: '45' },
    epochs: { type: 'string', default: '3' },
  },
}).values;
const seeds = args.seeds.split(',').map(Number);
const degrees = Number(args.degrees);
const epochs = Number(args.epochs);
const METHODS: Record<string, AdaptationMethod> = {
  dann: { kind: 'dann' },
  coral: { kind: 'coral' },
  mmd: { kind: 'mmd' },
  cdan: { kind: 'cdan' },
  mcc: { kind: 'mcc' },
};
const methods = args.methods.split(',').map((m) => {
  const method = METHODS[m];
  if (method === undefined) throw new Error(`--methods names '${m}'; expected some of ${Object.keys(METHODS).join(', ')}`);
  return { label: m, method };
});
const work = await mkdtemp(path.join(os.tmpdir(), 'tfjs-adapt-bad-draw-'));
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
log(
  `load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${os.cpus().length} cores`,
);

const mnist = await readMnist();
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const root = path.join(work, 'data');
const data = {
  source: await mnistDataset(mnist, root, 'source', 'train', range(0, 3000)),
  validation: await mnistDataset(mnist, root, 'validation', 'train', range(3000, 500)),
  target: await mnistDataset(mnist, root, 'target', 'train', range(10000, 3000), { degrees }),
  targetTest: await mnistDataset(mnist, root, 'target-test', 'test', range(0, 1000), { degrees }),
};
const ARCHITECTURE: Architecture = { kind: 'cnn', hidden: [128], filters: [16, 32] };
const VALIDATOR_SAMPLE = 500;

let runs = 0;
async function run(name: string, spec: JobSpec, sets: TrainingData, extra: Partial<TrainingTask> = {}) {
  const dir = path.join(work, 'runs', `${++runs}-${name}`);
  const task: TrainingTask = {
    jobId: name,
    spec,
    data: sets,
    modelDir: path.join(dir, 'model'),
    modelId: name,
    checkpointsDir: path.join(dir, 'checkpoints'),
    ...extra,
  };
  const epochMetrics: Record<string, number>[] = [];
  const started = performance.now();
  const result = await runTraining(task, (m: TrainingMessage) => void (m.type === 'metrics' && epochMetrics.push(m.metrics)));
  if (result.outcome !== 'succeeded') throw new Error(`${name} ended ${result.outcome}`);
  log(
    `${name}: targetAccuracy ${result.metrics.targetAccuracy?.toFixed(4)} (${((performance.now() - started) / 1000).toFixed(0)} s, load ${os.loadavg()[0].toFixed(1)})`,
  );
  return { task, result, epochMetrics };
}

/** Target-test accuracy and validators of a saved model (a checkpoint or the base), measured as the loop measures them. */
async function measure(modelDir: string, seed: number): Promise<Record<string, number>> {
  const { model } = await loadModel(modelDir);
  try {
    const sets = {
      target: await loadDataset(data.target, '/data/target'),
      source: await loadDataset(data.source, '/data/source'),
      validation: await loadDataset(data.validation, '/data/validation'),
    };
    const validators = new EpochValidators(model, featureLayerOf(model, undefined, '/method/featureLayer'), sets, { sampleSize: VALIDATOR_SAMPLE, seed });
    const scores = await validators.compute();
    const val = await evaluate(model, sets.validation);
    const target = await evaluate(model, data.targetTest);
    const measured = { ...scores, valAccuracy: val.accuracy };
    // as the training loop derives it at each epoch's end
    const bound = errorBound(measured);
    return { ...measured, ...(bound === undefined ? {} : { errorBound: bound }), targetAccuracy: target.accuracy };
  } finally {
    model.dispose();
  }
}

const rows: { seed: number; label: string; epoch: number; m: Record<string, number> }[] = [];
/** Each row as soon as it is measured, so that a run cut short still leaves its figures. */
function record(seed: number, label: string, epoch: number, m: Record<string, number>): void {
  rows.push({ seed, label, epoch, m });
  console.log(JSON.stringify({ seed, method: label, epoch, ...Object.fromEntries(['targetAccuracy', ...VALIDATOR_NAMES].map((k) => [k, m[k]])) }));
}
for (const seed of seeds) {
  const hp: Hyperparameters = { epochs: 2, batchSize: 64, seed, optimizer: { name: 'adam', learningRate: 0.001 } };
  const base = await run(
    `base-s${seed}`,
    { type: 'train', model: { architecture: ARCHITECTURE }, data: { train: 'source' }, hyperparameters: hp },
    { train: data.source },
  );
  const baseScores = await measure(base.task.modelDir, seed);
  record(seed, 'source only', 0, baseScores);
  for (const { label, method } of methods) {
    const spec: JobSpec = {
      type: 'domain_adaptation',
      model: { base: 'base' },
      method,
      data: { source: 'source', target: 'target', targetTest: 'target-test', validation: 'validation' },
      hyperparameters: { ...hp, epochs, validatorSample: VALIDATOR_SAMPLE },
    };
    const sets: TrainingData = { train: data.source, target: data.target, targetTest: data.targetTest, validation: data.validation };
    const { task, epochMetrics } = await run(`${label}-s${seed}`, spec, sets, { baseModelDir: base.task.modelDir, baseModelId: 'base' });
    for (const [i, m] of epochMetrics.entries()) {
      const epoch = i + 1;
      const dir = path.join(task.checkpointsDir, `epoch-${String(epoch).padStart(4, '0')}-step-${String(epoch * Math.ceil(3000 / 64)).padStart(8, '0')}`);
      const { targetAccuracy } = await measure(dir, seed);
      record(seed, label, epoch, { ...m, targetAccuracy: targetAccuracy });
    }
  }
}

const cell = (x: number | undefined) => (x === undefined ? '' : x.toFixed(4));
console.log(`\n| seed | method | epoch | target acc | ${VALIDATOR_NAMES.map((v) => `${v} (${VALIDATORS[v].goal === 'minimize' ? '↓' : '↑'})`).join(' | ')} |`);
console.log(`|---|---|---|---|${VALIDATOR_NAMES.map(() => '---').join('|')}|`);
for (const r of rows)
  console.log(`| ${r.seed} | ${r.label} | ${r.epoch} | ${cell(r.m.targetAccuracy)} | ${VALIDATOR_NAMES.map((v) => cell(r.m[v])).join(' | ')} |`);

// What a user without target labels would have seen. A run is "bad" when its final model is below
// source only on the target test set; a validator flags a run when its final value is worse than
// the source-only base's (the adaptation made it worse by the validator's own measure); early
// stopping on a validator keeps the epoch where it was best.
const worse = (v: ValidatorName, a: number, b: number) => (VALIDATORS[v].goal === 'maximize' ? a < b : a > b);
const points = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}`;
const summary: string[] = [];
for (const seed of seeds) {
  const base = rows.find((r) => r.seed === seed && r.label === 'source only');
  if (base === undefined) continue;
  for (const { label } of methods) {
    const epochsOf = rows.filter((r) => r.seed === seed && r.label === label);
    const last = epochsOf.at(-1);
    if (last === undefined) continue;
    const flags = VALIDATOR_NAMES.map((v) => (worse(v, last.m[v], base.m[v]) ? 'flags' : '-'));
    const stopped = VALIDATOR_NAMES.map((v) => {
      const kept = epochsOf.reduce((a, b) => (worse(v, a.m[v], b.m[v]) ? b : a));
      return `${points(kept.m.targetAccuracy - base.m.targetAccuracy)} (e${kept.epoch})`;
    });
    const delta = last.m.targetAccuracy - base.m.targetAccuracy;
    summary.push(`| ${seed} | ${label} | ${points(delta)}${delta < 0 ? ' **bad**' : ''} | ${flags.join(' | ')} | ${stopped.join(' | ')} |`);
  }
  // each validator's pick among the final models of every method and the source-only base
  const finals = [base, ...methods.flatMap(({ label }) => rows.filter((r) => r.seed === seed && r.label === label).slice(-1))];
  const best = finals.reduce((a, b) => (b.m.targetAccuracy > a.m.targetAccuracy ? b : a));
  const picks = VALIDATOR_NAMES.map((v) => {
    const p = finals.reduce((a, b) => (worse(v, a.m[v], b.m[v]) ? b : a));
    return `${p.label} ${points(p.m.targetAccuracy - base.m.targetAccuracy)}`;
  });
  summary.push(`| ${seed} | **pick** (oracle: ${best.label} ${points(best.m.targetAccuracy - base.m.targetAccuracy)}) | | ${picks.join(' | ')} | |`);
}
console.log(
  `\nTarget accuracy vs source only (points); per validator: does its final value flag the run (worse than source only's), and early stopping on it (the epoch it keeps); "pick": the final model each validator would choose among source only and the methods\n`,
);
console.log(
  `| seed | run | final vs source only | ${VALIDATOR_NAMES.map((v) => `${v} flags`).join(' | ')} | ${VALIDATOR_NAMES.map((v) => `stop on ${v}`).join(' | ')} |`,
);
console.log(`|---|---|---|${VALIDATOR_NAMES.map(() => '---').join('|')}|${VALIDATOR_NAMES.map(() => '---').join('|')}|`);
for (const line of summary) console.log(line);
log(
  `load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
await rm(work, { recursive: true, force: true });
