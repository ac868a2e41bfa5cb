import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config.js';
import { MAX_EPOCHS } from '../../src/schemas/job.js';
import { freePort, startRedisServer, type RedisServer } from '../../src/queue/redis-server.js';
import { startService, type Service } from '../../src/server.js';
import { freshDataDir } from './data-dir.js';
import { SERVICE_ENV } from './service-env.js';

export interface Harness {
  url: string;
  dataDir: string;
  redis: RedisServer;
  config: Config;
  service: Service;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; body: any }>;
  stop(): Promise<void>;
}

/**
 * The whole service as a user meets it: a real redis-server on a free port, PGlite in a
 * fresh temp dir (data-dir.ts), API and worker host in this process (training in its child processes),
 * listening on a free loopback port. `reuse` starts it again on an earlier harness's data
 * and Redis, as a restart would.
 */
export async function startHarness(env: Record<string, string> = {}, reuse?: { dataDir: string; redis: RedisServer }): Promise<Harness> {
  const dataDir = reuse?.dataDir ?? (await freshDataDir('tfjs-adapt-test-'));
  const redis = reuse?.redis ?? (await startRedisServer(join(dataDir, 'redis'), { port: await freePort() }));
  const config = loadConfig({ DATA_DIR: dataDir, PORT: '0', REDIS_URL: redis.url, LOG_LEVEL: 'warn', ...SERVICE_ENV, ...env });
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const service = await startService(config, 'all', log);
  const url = service.url!;
  return {
    url,
    dataDir,
    redis,
    config,
    service,
    async request(method, path, body, headers = {}) {
      const res = await fetch(url + path, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: hand back the text
      }
      return { status: res.status, headers: res.headers, body: parsed };
    },
    async stop() {
      await service.stop();
      await redis.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls a job until it reaches a terminal status (or the timeout passes). */
export async function waitForJob(h: Harness, id: string, timeoutMs = 120_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await h.request('GET', `/v1/jobs/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(body.status)) return body;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${body.status} after ${timeoutMs} ms: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Submits `spec` and pauses it while it trains (once it reports progress in epoch `fromEpoch`).
 * Whether a job of a given size still runs when the pause lands depends on the machine's speed,
 * so a job that ends first is submitted again with 4 times the epochs, up to the spec's bound of
 * MAX_EPOCHS: what a test asserts is the pause, never where time ran out. Returns the paused job
 * and the spec it ran.
 */
export async function submitAndPause<S extends { hyperparameters: { epochs: number } }>(h: Harness, spec: S, fromEpoch = 1): Promise<{ paused: any; spec: S }> {
  const ended = (j: any) => ['succeeded', 'failed', 'cancelled'].includes(j.status);
  for (let epochs = spec.hyperparameters.epochs; ; epochs = Math.min(4 * epochs, MAX_EPOCHS)) {
    const tried = { ...spec, hyperparameters: { ...spec.hyperparameters, epochs } };
    const paused = await pauseOnce(h, tried, fromEpoch, ended);
    if (paused) return { paused, spec: tried };
    if (epochs >= MAX_EPOCHS) throw new Error(`jobs of up to ${MAX_EPOCHS} epochs, each 4 times longer, finished before their pause took effect`);
  }
}

/** One job of submitAndPause(): the job paused with work left, or undefined when it finished first. */
async function pauseOnce(h: Harness, spec: unknown, fromEpoch: number, ended: (j: any) => boolean): Promise<any> {
  const posted = await h.request('POST', '/v1/jobs', spec);
  if (posted.status !== 202) throw new Error(`POST /v1/jobs answered ${posted.status}: ${JSON.stringify(posted.body)}`);
  const { id } = posted.body;
  const get = async () => (await h.request('GET', `/v1/jobs/${id}`)).body;
  // 300 s: bounds for a hang, not for how fast the machine trains or stops
  const seen = await waitFor(
    `job ${id} to train`,
    async () => {
      const j = await get();
      return ((j.status === 'running' && j.progress?.epoch >= fromEpoch) || ended(j)) && j;
    },
    300_000,
  );
  if (ended(seen)) return undefined;
  const p = await h.request('POST', `/v1/jobs/${id}/pause`);
  if (p.status === 409) return undefined;
  if (p.status !== 202 || p.body.pauseRequested !== true) throw new Error(`pause answered ${p.status}: ${JSON.stringify(p.body)}`);
  const end = await waitFor(
    `job ${id} to pause`,
    async () => {
      const j = await get();
      return (j.status === 'paused' || ended(j)) && j;
    },
    300_000,
  );
  if (end.status !== 'succeeded' && end.status !== 'paused') throw new Error(`job ${id} ended ${end.status} instead of pausing: ${JSON.stringify(end.error)}`);
  // paused after its last step is a job that finished first: nothing is left to resume
  const workLeft = end.status === 'paused' && (end.progress.epoch < (spec as any).hyperparameters.epochs || end.progress.step < end.progress.steps);
  return workLeft ? end : undefined;
}

/** Small MNIST slices: enough to learn something in seconds. */
export async function registerMnist(h: Pick<Harness, 'request'>, trainLimit = 2000, testLimit = 500): Promise<{ train: string; test: string }> {
  const train = await h.request('POST', '/v1/datasets', { name: 'mnist-train', source: { builtin: 'mnist', split: 'train', limit: trainLimit } });
  const test = await h.request('POST', '/v1/datasets', { name: 'mnist-test', source: { builtin: 'mnist', split: 'test', limit: testLimit } });
  if (train.status !== 201 || test.status !== 201) throw new Error(`dataset registration failed: ${JSON.stringify([train.body, test.body])}`);
  return { train: train.body.id, test: test.body.id };
}

export function trainSpec(data: { train: string; test?: string }, over: Record<string, unknown> = {}) {
  return {
    type: 'train',
    model: { architecture: { kind: 'mlp', hidden: [32], activation: 'relu' } },
    data,
    hyperparameters: { epochs: 2, batchSize: 64, seed: 7, optimizer: { name: 'adam', learningRate: 0.003 } },
    ...over,
  };
}

/** A full fine-tune of `base` on `data`: one epoch of SGD. */
export function finetuneSpec(base: string, data: { train: string; test?: string }) {
  return {
    type: 'finetune',
    model: { base },
    strategy: { kind: 'full' },
    data,
    hyperparameters: { epochs: 1, batchSize: 64, seed: 3, optimizer: { name: 'sgd', learningRate: 0.01 } },
  };
}
