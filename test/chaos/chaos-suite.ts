/**
 * The chaos suite (npm run test:chaos): the API and the worker host as separate processes
 * on real PostgreSQL and a real redis-server, while training children and the worker host
 * are SIGKILLed at random moments, the API is killed and restarted, and Redis restarts.
 * Every accepted job must end exactly once, nothing may be lost or finish twice,
 * checkpoints only move forward, SSE clients see every event once, and each resumed job
 * must match its uninterrupted twin.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, startRedisServer, type RedisServer } from '../../src/queue/redis-server.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { readSse } from '../helpers/sse.js';

const SERVER = fileURLToPath(new URL('../../src/server.js', import.meta.url));
const JOBS = Number(process.env.CHAOS_JOBS ?? 10);
const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
let rand = seed;
/** mulberry32: the run is reproducible from the seed printed below */
const random = () => {
  rand = (rand + 0x6d2b79f5) | 0;
  let t = Math.imul(rand ^ (rand >>> 15), 1 | rand);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

let pg: PostgresServer;
let redis: RedisServer;
let redisPort: number;
let dataDir: string;
let apiPort: number;
let api: ChildProcess | undefined;
let worker: ChildProcess | undefined;
const base = () => `http://127.0.0.1:${apiPort}`;

function env(extra: Record<string, string> = {}) {
  return {
    ...process.env,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    DATABASE_URL: pg.url,
    DATA_DIR: dataDir,
    PORT: String(apiPort),
    LOG_LEVEL: 'error',
    RECONCILE_INTERVAL_MS: '1000',
    JOB_ATTEMPTS: '50',
    JOB_BACKOFF_MS: '100',
    LOCK_DURATION_MS: '3000',
    WORKER_CONCURRENCY: '2',
    ...extra,
  };
}

const spawnApi = () => (api = spawn(process.execPath, [SERVER, 'api'], { env: env(), stdio: ['ignore', 'ignore', 'inherit'] }));
const spawnWorker = () => (worker = spawn(process.execPath, [SERVER, 'worker'], { env: env(), stdio: ['ignore', 'ignore', 'inherit'] }));

async function kill(p: ChildProcess | undefined) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((ok) => p.once('exit', ok));
  p.kill('SIGKILL');
  await gone;
}

async function http(method: string, path: string, body?: unknown): Promise<any> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(base() + path, { method, ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
      if (res.status >= 500 && i < 100) throw new Error(`${res.status}`);
      return { status: res.status, body: await res.json() };
    } catch (err) {
      // the API may be down on purpose: try again
      if (i >= 300) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** An SSE client that keeps reconnecting with Last-Event-ID until the stream ends. */
async function follow(jobId: string): Promise<number[]> {
  const ids: number[] = [];
  for (;;) {
    try {
      const { messages, ended } = await readSse(`${base()}/v1/jobs/${jobId}/events`, { ...(ids.length ? { lastEventId: ids[ids.length - 1]! } : {}), timeoutMs: 600_000 });
      ids.push(...messages.map((m) => m.id));
      if (ended) return ids;
    } catch {
      // connection refused or cut while the API restarts: come back
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

const childrenOf = (pid: number) =>
  spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)]).stdout.toString().split('\n').map((s) => Number(s.trim())).filter((n) => n > 0);

before(async () => {
  console.log(`chaos seed ${seed} (set CHAOS_SEED to replay)`);
  dataDir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-chaos-'));
  pg = await startPostgres();
  redisPort = await freePort();
  redis = await startRedisServer(join(dataDir, 'redis'), { port: redisPort });
  apiPort = await freePort();
  spawnApi();
  spawnWorker();
});

after(async () => {
  await kill(api);
  await kill(worker);
  await redis?.stop();
  await pg?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const LEARNING = ['loss', 'accuracy', 'testLoss', 'testAccuracy'];

test(`chaos: ${JOBS} jobs under SIGKILLs and restarts end exactly once and match their twins`, { timeout: 15 * 60_000 }, async () => {
  const train = (await http('POST', '/v1/datasets', { name: 'chaos-train', source: { builtin: 'mnist', split: 'train', limit: 3000 } })).body.id;
  const testSet = (await http('POST', '/v1/datasets', { name: 'chaos-test', source: { builtin: 'mnist', split: 'test', limit: 300 } })).body.id;
  const specs = Array.from({ length: JOBS }, (_, i) => ({
    type: 'train',
    model: { architecture: { kind: 'mlp', hidden: [32], activation: 'relu' } },
    data: { train, test: testSet },
    hyperparameters: { epochs: 5, batchSize: 32, seed: 100 + i, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } },
  }));
  const ids: string[] = [];
  for (const spec of specs) {
    const res = await http('POST', '/v1/jobs', spec);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    ids.push(res.body.id);
  }
  const streams = ids.map(follow);

  const actions: string[] = [];
  const unfinished = async () => {
    const list = (await http('GET', '/v1/jobs?limit=200')).body.data;
    return list.filter((j: any) => ids.includes(j.id) && !['succeeded', 'failed', 'cancelled'].includes(j.status)).length;
  };
  const deadline = Date.now() + 10 * 60_000;
  while ((await unfinished()) > 0) {
    assert.ok(Date.now() < deadline, `jobs still unfinished after 10 minutes; actions: ${actions.join(', ')}`);
    await new Promise((r) => setTimeout(r, 800 + random() * 2000));
    const roll = random();
    if (roll < 0.45) {
      const kids = worker?.pid ? childrenOf(worker.pid) : [];
      if (kids.length) {
        process.kill(kids[Math.floor(random() * kids.length)]!, 'SIGKILL');
        actions.push('kill child');
      }
    } else if (roll < 0.65) {
      await kill(worker);
      await new Promise((r) => setTimeout(r, 300));
      spawnWorker();
      actions.push('kill worker host');
    } else if (roll < 0.8) {
      await kill(api);
      spawnApi();
      actions.push('kill api');
    } else if (roll < 0.9) {
      await redis.stop();
      redis = await startRedisServer(join(dataDir, 'redis'), { port: redisPort });
      actions.push('restart redis');
    }
  }
  console.log(`chaos actions: ${actions.join(', ')}`);

  const seen = await Promise.all(streams);
  for (const [i, id] of ids.entries()) {
    const job = (await http('GET', `/v1/jobs/${id}`)).body;
    assert.equal(job.status, 'succeeded', `${id}: ${JSON.stringify(job.error)}`);
    const events = (await http('GET', `/v1/jobs/${id}/events?limit=1000`)).body.data;
    assert.deepEqual(events.map((e: any) => e.seq), events.map((_: any, k: number) => k + 1), 'the log is gap-free');
    const terminal = events.filter((e: any) => e.type === 'status' && ['succeeded', 'failed', 'cancelled'].includes(e.data.status));
    assert.equal(terminal.length, 1, `${id} ended exactly once`);
    assert.deepEqual(seen[i], events.map((e: any) => e.seq), `${id}: the SSE client saw every event once, in order`);
    const ckpts = events.filter((e: any) => e.type === 'checkpoint').map((e: any) => e.data.epoch * 1e6 + e.data.step);
    for (let k = 1; k < ckpts.length; k++) assert.ok(ckpts[k]! > ckpts[k - 1]!, `${id}: checkpoints only move forward`);
    assert.equal((await http('GET', `/v1/models/${job.result.modelId}`)).status, 200);
  }

  // the twins, without chaos: same specs, same backend
  const twins: string[] = [];
  for (const spec of specs) twins.push((await http('POST', '/v1/jobs', spec)).body.id);
  for (const [i, id] of twins.entries()) {
    let twin: any;
    for (;;) {
      twin = (await http('GET', `/v1/jobs/${id}`)).body;
      if (['succeeded', 'failed', 'cancelled'].includes(twin.status)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const job = (await http('GET', `/v1/jobs/${ids[i]}`)).body;
    const pick = (m: any) => Object.fromEntries(LEARNING.map((k) => [k, m[k]]));
    assert.deepEqual(pick(job.result.metrics), pick(twin.result.metrics), `${ids[i]} (attempt ${job.attempt}) matches its twin`);
  }
});
