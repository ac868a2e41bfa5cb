/**
 * The prediction row: the seed MLP (784-128-10, trained for one epoch through the API) answers
 * one MNIST example per POST /v1/models/{id}/predict, one request at a time on an idle service
 * whose prediction child is warm (started and the model loaded by earlier requests). Latency is
 * the client's, from before the request to its parsed answer, over loopback.
 *
 * Run alone for a look (not for figures): `node dist/bench/predict-row.js [requests]`.
 */
import { pathToFileURL } from 'node:url';
import { startHarness, waitForJob, type Harness } from '../test/helpers/harness.js';
import type { Row } from './report.js';
import { list, num, quantile } from './stats.js';

type Log = (s: string) => void;

const WARMUP = 20;
const TARGET_MS = 20;

export async function predictRow(h: Harness, train: string, requests: number, log: Log): Promise<Row> {
  const posted = await h.request('POST', '/v1/jobs', {
    type: 'train',
    model: { architecture: { kind: 'mlp', hidden: [128], activation: 'linear' } },
    data: { train },
    hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'sgd', learningRate: 0.001, momentum: 0.9 } },
  });
  if (posted.status !== 202) throw new Error(`POST /v1/jobs answered ${posted.status}: ${JSON.stringify(posted.body)}`);
  const job = await waitForJob(h, posted.body.id);
  if (job.status !== 'succeeded') throw new Error(`the seed MLP job ended ${job.status}: ${JSON.stringify(job.error)}`);
  const model = job.result.modelId as string;
  const example = (await h.request('GET', `/v1/datasets/${train}/examples?limit=1`)).body.data[0].features as number[];
  const body = JSON.stringify({ examples: [example], topK: 3 });
  const once = async () => {
    const t0 = performance.now();
    const res = await fetch(`${h.url}/v1/models/${model}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const answer = (await res.json()) as { predictions?: unknown[] };
    if (res.status !== 200 || answer.predictions?.length !== 1) throw new Error(`predict answered ${res.status}: ${JSON.stringify(answer)}`);
    return performance.now() - t0;
  };
  const cold = await once();
  for (let i = 0; i < WARMUP; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < requests; i++) times.push(await once());
  const p50 = quantile(times, 0.5);
  const p99 = quantile(times, 0.99);
  log(
    `predict one example, warm child: p50 ${num(p50, 1)} ms, p99 ${num(p99, 1)} ms over ${requests} requests (first request, child cold: ${num(cold, 0)} ms)`,
  );
  return {
    name: 'POST /v1/models/:id/predict, seed MLP, one example, p50 / p99, idle warm child',
    ours: `${num(p50, 1)} / ${num(p99, 1)} ms`,
    peer: '-',
    ratio: '-',
    target: `p99 < ${TARGET_MS} ms`,
    status: p99 < TARGET_MS ? 'met' : 'missed',
    note: p99 < TARGET_MS ? '' : `p99 missed by ${num(p99 - TARGET_MS, 1)} ms`,
    details: [
      `${requests} sequential requests after ${WARMUP} warm-up ones, one MNIST example each (topK 3): ${list(times, (v) => `${num(v, 1)} ms`)}`,
      `the first request, which starts the prediction child (tfjs and its backend) and loads the model: ${num(cold, 0)} ms`,
    ],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const requests = Number(process.argv[2] ?? 50);
  const h = await startHarness({ WORKER_CONCURRENCY: '1', TRAINING_THREADS: '1' });
  try {
    const train = (await h.request('POST', '/v1/datasets', { name: 'bench-predict', source: { builtin: 'mnist', split: 'train', limit: 2000 } })).body
      .id as string;
    const row = await predictRow(h, train, requests, console.log);
    console.log(JSON.stringify({ name: row.name, ours: row.ours, status: row.status }, null, 2));
  } finally {
    await h.stop();
  }
}
