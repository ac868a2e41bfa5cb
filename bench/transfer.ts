/**
 * The transfer benchmark: a pretrained base reused for a new task, through the real training loop
 * (runTraining, as the worker runs it), written into docs/benchmarks.md (its own section, between
 * the markers below) with the command that made it.
 *
 *   npm run bench:transfer [-- --seeds 1,2] [--quick] [--out docs/benchmarks.md]
 *
 * The base is the service's CNN (conv 16-32 with batch norm, dense 128) pretrained on MNIST digits
 * 0-4; the new task is digits 5-9 from a few hundred labelled examples. Per seed:
 *   - from scratch: the same CNN trained on the new task alone;
 *   - new head, cached features: freeze with a new head on the base's last hidden layer; the
 *     frozen part's outputs are computed once (cache built), then a second job reuses them;
 *   - new head, uncached: the same job with no feature cache, for the cache's speed-up;
 *   - last block fine-tuned: freeze with a new head, trained from conv_2 on (features of pool_1 cached).
 * Accuracy is on 2,000 test examples of digits 5-9; wall time is the whole job, this process.
 * MobileNetV2 (nsfwjs) as the base is for when a materialised copy of it is on hand: not yet.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { FeatureCacheReport, Hyperparameters, JobSpec } from '../src/schemas/job.js';
import type { DatasetFiles, TrainingData, TrainingTask } from '../src/jobs/task.js';
import { readIdx, writeDatasetFiles } from '../workers/training/data.js';
import { runTraining } from '../workers/training/training-loop.js';
import { MNIST_DIR } from './mnist.js';
import { writeSection } from './doc-sections.js';

process.env.TFJS_BACKEND ||= 'wasm';
const args = parseArgs({
  options: { seeds: { type: 'string', default: '1,2' }, quick: { type: 'boolean', default: false }, out: { type: 'string', default: 'docs/benchmarks.md' } },
}).values;
const seeds = args.seeds.split(',').map(Number);
if (!seeds.every((s) => Number.isInteger(s) && s >= 0)) throw new Error(`--seeds is '${args.seeds}'; expected non-negative integers separated by commas`);
const quick = args.quick;
const command = `npm run bench:transfer${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const work = await mkdtemp(path.join(os.tmpdir(), 'tfjs-adapt-transfer-'));
const featuresRoot = path.join(work, 'features');
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const scale = (n: number) => (quick ? Math.round(n / 5) : n);

const images = {
  train: (await readIdx(path.join(MNIST_DIR, 'train-images-idx3-ubyte'))).data as Uint8Array,
  test: (await readIdx(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'))).data as Uint8Array,
};
const labels = {
  train: (await readIdx(path.join(MNIST_DIR, 'train-labels-idx1-ubyte'))).data as Uint8Array,
  test: (await readIdx(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'))).data as Uint8Array,
};

/** The first `count` examples of `digits` in a split, from example `from` on, relabelled 0..k-1, as [28, 28, 1] images. */
async function digits(id: string, split: 'train' | 'test', digitList: number[], from: number, count: number): Promise<DatasetFiles> {
  const keep: number[] = [];
  for (let i = from; keep.length < count && i < labels[split].length; i++) if (digitList.includes(labels[split][i])) keep.push(i);
  const features = new Uint8Array(keep.length * 784);
  keep.forEach((example, i) => features.set(images[split].subarray(example * 784, (example + 1) * 784), i * 784));
  const dir = path.join(work, 'data', id);
  await writeDatasetFiles(
    dir,
    features,
    Int32Array.from(keep, (i) => digitList.indexOf(labels[split][i])),
  );
  return {
    id,
    dir,
    numExamples: keep.length,
    featureShape: [28, 28, 1],
    featureDtype: 'uint8',
    numClasses: digitList.length,
    classes: digitList.map(String),
    preprocessing: { scale: 1 / 255, offset: 0 },
  };
}

interface Job {
  accuracy: number;
  seconds: number;
  featureCache?: FeatureCacheReport;
  modelDir: string;
}

let runs = 0;
async function run(name: string, spec: JobSpec, data: TrainingData, extra: Partial<TrainingTask> = {}): Promise<Job> {
  const dir = path.join(work, 'runs', `${++runs}-${name}`);
  const task: TrainingTask = {
    jobId: name,
    spec,
    data,
    modelDir: path.join(dir, 'model'),
    modelId: name,
    checkpointsDir: path.join(dir, 'checkpoints'),
    ...extra,
  };
  const started = performance.now();
  const result = await runTraining(task, () => {});
  const seconds = (performance.now() - started) / 1000;
  if (result.outcome !== 'succeeded') throw new Error(`${name} ended ${result.outcome}`);
  const cache = result.featureCache ? `, feature cache ${result.featureCache.status} in ${result.featureCache.seconds.toFixed(2)} s` : '';
  // the pretraining job has no test set
  const accuracy = result.metrics.testAccuracy ?? Number.NaN;
  log(`${name}: testAccuracy ${accuracy.toFixed(4)} in ${seconds.toFixed(1)} s${cache}`);
  return { accuracy, seconds, modelDir: task.modelDir, ...(result.featureCache ? { featureCache: result.featureCache } : {}) };
}

const ARCHITECTURE = { kind: 'cnn' as const, hidden: [128], filters: [16, 32], batchNorm: true };
const ROWS = [
  'from scratch (cnn)',
  'new head, features cached (built)',
  'new head, features cached (reused)',
  'new head, uncached',
  'last block fine-tuned (trainFrom conv_2)',
] as const;
type Row = (typeof ROWS)[number];

const pretrainSet = await digits('pretrain', 'train', [0, 1, 2, 3, 4], 0, scale(10000));
const fewShot = await digits('few', 'train', [5, 6, 7, 8, 9], 30000, scale(500));
const test = await digits('test', 'test', [5, 6, 7, 8, 9], 0, scale(2000));
const results = new Map<Row, Job[]>(ROWS.map((r) => [r, []]));

for (const seed of seeds) {
  const hp: Hyperparameters = { epochs: 10, batchSize: 32, seed, optimizer: { name: 'adam', learningRate: 0.001 } };
  const pre = await run(
    `pretrain-s${seed}`,
    { type: 'train', model: { architecture: ARCHITECTURE }, data: { train: 'pretrain' }, hyperparameters: { ...hp, epochs: 2 } },
    { train: pretrainSet },
  );
  const data: TrainingData = { train: fewShot, test };
  const base = { baseModelDir: pre.modelDir, baseModelId: `base-s${seed}` };
  const finetune = (strategy: JobSpec['strategy']): JobSpec => ({
    type: 'finetune',
    model: { base: base.baseModelId },
    strategy,
    data: { train: 'few', test: 'test' },
    hyperparameters: hp,
  });
  results
    .get('from scratch (cnn)')!
    .push(
      await run(`scratch-s${seed}`, { type: 'train', model: { architecture: ARCHITECTURE }, data: { train: 'few', test: 'test' }, hyperparameters: hp }, data),
    );
  const head = finetune({ kind: 'freeze', newHead: true });
  results.get('new head, features cached (built)')!.push(await run(`head-built-s${seed}`, head, data, { ...base, featuresRoot }));
  results.get('new head, features cached (reused)')!.push(await run(`head-reused-s${seed}`, head, data, { ...base, featuresRoot }));
  results.get('new head, uncached')!.push(await run(`head-uncached-s${seed}`, head, data, base));
  results
    .get('last block fine-tuned (trainFrom conv_2)')!
    .push(await run(`block-s${seed}`, finetune({ kind: 'freeze', newHead: true, trainFrom: 'conv_2' }), data, { ...base, featuresRoot }));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const table = ROWS.map((row) => {
  const jobs = results.get(row)!;
  const cache = jobs[0]?.featureCache;
  const cacheCell =
    cache === undefined ? 'n/a' : cache.status === 'unused' ? 'unused' : `${cache.status}, ${mean(jobs.map((j) => j.featureCache!.seconds)).toFixed(2)} s`;
  return `| ${row} | ${(100 * mean(jobs.map((j) => j.accuracy))).toFixed(2)} | ${mean(jobs.map((j) => j.seconds)).toFixed(1)} | ${cacheCell} |`;
});
const uncached = mean(results.get('new head, uncached')!.map((j) => j.seconds));
const built = mean(results.get('new head, features cached (built)')!.map((j) => j.seconds));
const reused = mean(results.get('new head, features cached (reused)')!.map((j) => j.seconds));

const section = [
  '## Transfer: a pretrained base, a new head, a feature cache',
  '',
  `\`${command}\` on ${os.cpus()[0]?.model ?? 'an unknown cpu'} (${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}), backend ${process.env.TFJS_BACKEND}, seeds ${seeds.join(', ')}.`,
  `Base: the service's CNN pretrained on MNIST digits 0-4; task: digits 5-9 from ${fewShot.numExamples} labelled examples, 10 epochs of Adam 0.001, tested on ${test.numExamples} examples.`,
  '',
  '| job | test accuracy % | wall time per job (s) | feature cache |',
  '| --- | ---: | ---: | --- |',
  ...table,
  '',
  `Feature cache speed-up of the new-head job: ${(uncached / built).toFixed(2)}x when it builds the cache, ${(uncached / reused).toFixed(2)}x when it reuses it (uncached ${uncached.toFixed(1)} s).`,
].join('\n');
console.log(`\n${section}`);
await writeSection(args.out, 'transfer', section);
await rm(work, { recursive: true, force: true });
