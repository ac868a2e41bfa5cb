/**
 * The chaos suite (npm run test:chaos): the API and the worker host as separate processes
 * on real PostgreSQL and a real redis-server, while training children and the worker host
 * are SIGKILLed at random moments, the API is killed and restarted, and Redis restarts.
 * Every accepted job must end exactly once, nothing may be lost or finish twice,
 * checkpoints only move forward, SSE clients see every event once, and each resumed job
 * must match its uninterrupted twin.
 *
 * The schedule comes from a seeded PRNG and is paced by training steps, not time: CHAOS_SEED=<n>
 * replays a run's actions, in order, each after the same number of steps trained (where a
 * step falls in an attempt still depends on timing). CHAOS_JOBS sets the number of jobs (default 10).
 * The processes' logs are kept, and their directory printed, when the run fails.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { mulberry32, shuffle } from '../../src/artifacts/ingest/random.js';
import { createRedis, freePort, startRedisServer, type RedisServer } from '../../src/queue/redis-server.js';
import { QUEUE_NAME } from '../../src/queue/training-queue.js';
import { TERMINAL_STATUSES, type JobStatus } from '../../src/schemas/job.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { childProcesses } from '../helpers/processes.js';
import { readSse } from '../helpers/sse.js';

const SERVER = fileURLToPath(new URL('../../src/server.js', import.meta.url));

function envInteger(name: string, fallback: () => number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback();
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name}=${JSON.stringify(raw)}: expected a positive integer`);
  return n;
}
const JOBS = envInteger('CHAOS_JOBS', () => 10);
const SEED = envInteger('CHAOS_SEED', () => randomInt(1, 1_000_000));
const random = mulberry32(SEED);

/** An epoch of the jobs below is 94 steps, a job 470: actions land anywhere in epochs, about 25 per run. */
const stepsToNextAction = () => 40 + Math.floor(random() * 360);

type Action = 'kill child' | 'kill worker host' | 'kill api' | 'restart redis';
/** One round of chaos: the schedule plays round after round, each in a seeded order, so every kind happens in each seven actions of a round. */
const ROUND: Action[] = ['kill child', 'kill child', 'kill child', 'kill worker host', 'kill worker host', 'kill api', 'restart redis'];
function* schedule(): Generator<Action> {
  for (;;)
    for (const i of shuffle(
      ROUND.map((_, k) => k),
      random,
    ))
      yield ROUND[i];
}

let pg: PostgresServer;
let redis: RedisServer;
let redisPort: number;
let dataDir: string;
let logDir: string;
let apiPort: number;
let api: ChildProcess | undefined;
let worker: ChildProcess | undefined;
let passed = false;
/** ends the SSE clients' reconnect loops, so that a failed run does not hang */
const finished = new AbortController();
const base = () => `http://127.0.0.1:${apiPort}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isTerminal = (status: unknown) => TERMINAL_STATUSES.includes(status as JobStatus);

function spawnService(mode: 'api' | 'worker'): ChildProcess {
  const log = openSync(join(logDir, `${mode}.log`), 'a');
  const child = spawn(process.execPath, [SERVER, mode], {
    env: {
      ...process.env,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      DATABASE_URL: pg.url,
      DATA_DIR: dataDir,
      PORT: String(apiPort),
      // the worker's info lines (every attempt started and ended) tell a failed run's story; the API's would be every request
      LOG_LEVEL: mode === 'worker' ? 'info' : 'warn',
      RECONCILE_INTERVAL_MS: '1000',
      JOB_ATTEMPTS: '50',
      JOB_BACKOFF_MS: '100',
      LOCK_DURATION_MS: '3000',
      WORKER_CONCURRENCY: '2',
    },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  return child;
}

async function kill(p: ChildProcess | undefined) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((ok) => p.once('exit', ok));
  p.kill('SIGKILL');
  await gone;
}

/** 5xx answers: none of the requests below needs Redis, and PostgreSQL stays up, so each is a bug */
const serverErrors: string[] = [];

async function http(method: string, path: string, body?: unknown): Promise<any> {
  for (let i = 0; ; i++) {
    let res: Response;
    try {
      res = await fetch(base() + path, { method, ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    } catch (err) {
      // the API may be down on purpose: try again
      if (i >= 300) throw err;
      await sleep(200);
      continue;
    }
    const answer = { status: res.status, body: await res.json() };
    if (res.status >= 500) serverErrors.push(`${method} ${path}: ${res.status} ${JSON.stringify(answer.body)}`);
    return answer;
  }
}

/**
 * An SSE client that keeps reconnecting with Last-Event-ID until it has the terminal status
 * event: a stream cut by an API that died can look like one that ended.
 */
async function follow(jobId: string): Promise<number[]> {
  const ids: number[] = [];
  let over = false;
  while (!finished.signal.aborted) {
    try {
      const { messages } = await readSse(`${base()}/v1/jobs/${jobId}/events`, {
        ...(ids.length ? { lastEventId: ids[ids.length - 1] } : {}),
        timeoutMs: 600_000,
      });
      ids.push(...messages.map((m) => m.id));
      over ||= messages.some((m) => m.event === 'status' && isTerminal(m.data.data.status));
      if (over) return ids;
    } catch {
      // connection refused or cut while the API restarts: come back
    }
    await sleep(300);
  }
  return ids;
}

/** Far longer than any recovery here (a lock expiring, a host starting, a retry's backoff) takes. */
const STALL_MS = 3 * 60_000;

/** Where each unfinished job stands in the store and in BullMQ, and whether the worker host lives. */
async function diagnose(jobs: any[]): Promise<string> {
  const connection = createRedis(`redis://127.0.0.1:${redisPort}`, { maxRetriesPerRequest: 1 });
  const queue = new Queue(QUEUE_NAME, { connection });
  try {
    const lines = [
      `worker host ${worker?.pid} ${worker?.exitCode === null && worker.signalCode === null ? 'running' : 'gone'}, children ${worker?.pid ? childProcesses(worker.pid).join(' ') : '-'}`,
    ];
    for (const j of jobs.filter((j) => !isTerminal(j.status))) {
      const entry = await queue.getJob(j.id);
      const bull = entry
        ? `${await entry.getState()} attemptsStarted ${entry.attemptsStarted} attemptsMade ${entry.attemptsMade} finishedOn ${entry.finishedOn}`
        : 'no entry';
      lines.push(`${j.id}: ${j.status} attempt ${j.attempt} progress ${JSON.stringify(j.progress)}; BullMQ: ${bull}`);
    }
    return lines.join('\n');
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

before(async () => {
  console.log(`chaos seed ${SEED} (set CHAOS_SEED=${SEED} to replay this schedule), ${JOBS} jobs`);
  dataDir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-chaos-'));
  logDir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-chaos-logs-'));
  pg = await startPostgres();
  redisPort = await freePort();
  redis = await startRedisServer(join(dataDir, 'redis'), { port: redisPort });
  apiPort = await freePort();
  api = spawnService('api');
  worker = spawnService('worker');
});

after(async () => {
  finished.abort();
  await kill(api);
  await kill(worker);
  await redis?.stop();
  await pg?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  if (passed) rmSync(logDir, { recursive: true, force: true });
  else console.log(`chaos seed ${SEED} failed; the API's and worker's logs are in ${logDir}`);
});

const LEARNING = ['loss', 'accuracy', 'testLoss', 'testAccuracy'];
const pick = (m: Record<string, unknown>) => Object.fromEntries(LEARNING.map((k) => [k, m[k]]));

test(`chaos: ${JOBS} jobs under SIGKILLs and restarts end exactly once and match their twins`, { timeout: 30 * 60_000 }, async () => {
  const started = Date.now();
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

  // Chaos is paced by training, not by the clock: the next action waits until the jobs have
  // trained a random number of steps since the last one, and have been seen training since it,
  // so every action meets jobs at work (not a host still starting), and a slow machine gets as
  // much chaos per job as a fast one. Steps beyond the mark count towards the next action: one
  // poll can see a hundred steps or more.
  const actions: Action[] = [];
  const plan = schedule();
  const positions = new Map<string, number>();
  let steps = 0;
  let mark = stepsToNextAction();
  let moved = false;
  let lastChange = Date.now();
  let lastState = '';
  for (;;) {
    const jobs = (await http('GET', '/v1/jobs?limit=200')).body.data.filter((j: any) => ids.includes(j.id));
    for (const j of jobs) {
      const at = j.progress ? (j.progress.epoch - 1) * j.progress.steps + j.progress.step : 0;
      // a resumed job goes back to its checkpoint: only steps forward count
      const forward = Math.max(0, at - (positions.get(j.id) ?? 0));
      steps += forward;
      moved ||= forward > 0;
      positions.set(j.id, at);
    }
    const state = JSON.stringify(jobs.map((j: any) => [j.status, j.attempt, j.progress]));
    if (state !== lastState) [lastState, lastChange] = [state, Date.now()];
    if (Date.now() - lastChange > STALL_MS) assert.fail(`nothing changed for ${STALL_MS / 1000} s; actions: ${actions.join(', ')}\n${await diagnose(jobs)}`);
    if (jobs.every((j: any) => isTerminal(j.status))) break;
    if (steps < mark || !moved) {
      await sleep(250);
      continue;
    }
    mark += stepsToNextAction();
    moved = false;
    const action = plan.next().value as Action;
    if (action === 'kill child') {
      const kids = worker?.pid ? childProcesses(worker.pid) : [];
      if (kids.length === 0) continue;
      try {
        process.kill(kids[Math.floor(random() * kids.length)], 'SIGKILL');
      } catch (err) {
        // it ended by itself since we looked
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') continue;
        throw err;
      }
    } else if (action === 'kill worker host') {
      await kill(worker);
      await sleep(300);
      worker = spawnService('worker');
    } else if (action === 'kill api') {
      await kill(api);
      api = spawnService('api');
    } else {
      await redis.stop();
      redis = await startRedisServer(join(dataDir, 'redis'), { port: redisPort });
    }
    actions.push(action);
  }
  const chaosSeconds = (Date.now() - started) / 1000;

  const seen = await Promise.all(streams);
  let attempts = 0;
  let resumed = 0;
  for (const [i, id] of ids.entries()) {
    const job = (await http('GET', `/v1/jobs/${id}`)).body;
    assert.equal(job.status, 'succeeded', `${id}: ${JSON.stringify(job.error)}`);
    const events = (await http('GET', `/v1/jobs/${id}/events?limit=1000`)).body.data;
    assert.deepEqual(
      events.map((e: any) => e.seq),
      events.map((_: any, k: number) => k + 1),
      `${id}: the log is gap-free`,
    );
    const terminal = events.filter((e: any) => e.type === 'status' && isTerminal(e.data.status));
    assert.equal(terminal.length, 1, `${id} ended exactly once`);
    assert.equal(events.at(-1), terminal[0], `${id}: nothing happened after it ended`);
    const starts = events.filter((e: any) => e.type === 'status' && e.data.status === 'running').map((e: any) => e.data.attempt);
    assert.ok(
      starts.every((a: number, k: number) => k === 0 || a > starts[k - 1]),
      `${id}: each attempt started once, in rising order: ${starts.join(', ')}`,
    );
    assert.equal(job.attempt, starts.at(-1), `${id}: the job is on its last started attempt`);
    assert.deepEqual(
      seen[i],
      events.map((e: any) => e.seq),
      `${id}: the SSE client saw every event once, in order`,
    );
    const checkpoints = events.filter((e: any) => e.type === 'checkpoint').map((e: any) => e.data.step);
    assert.ok(
      checkpoints.every((s: number, k: number) => k === 0 || s > checkpoints[k - 1]),
      `${id}: checkpoints only move forward: steps ${checkpoints.join(', ')}`,
    );
    assert.equal((await http('GET', `/v1/models/${job.result.modelId}`)).status, 200);
    attempts += starts.length;
    if (events.some((e: any) => e.type === 'log' && String(e.data.message).startsWith('resuming from checkpoint'))) resumed++;
  }
  const count = (a: Action) => actions.filter((x) => x === a).length;
  console.log(
    `chaos: ${JOBS} jobs, ${steps} steps trained in ${attempts} attempts, ${resumed} jobs resumed from a checkpoint; ${count('kill child')} training children and ` +
      `${count('kill worker host')} worker hosts SIGKILLed, ${count('kill api')} API and ${count('restart redis')} Redis restarts in ${chaosSeconds.toFixed(0)} s`,
  );
  console.log(`chaos actions: ${actions.join(', ')}`);
  for (const a of new Set(ROUND)) assert.ok(count(a) > 0, `the run was over before any "${a}"; actions: ${actions.join(', ')}`);
  assert.ok(resumed > 0, 'no job was resumed from a checkpoint, so no twin comparison tells anything');

  // the twins, without chaos: same specs, same backend
  const twinsStarted = Date.now();
  const twins: string[] = [];
  for (const spec of specs) twins.push((await http('POST', '/v1/jobs', spec)).body.id);
  for (const [i, id] of twins.entries()) {
    let twin: any;
    for (;;) {
      twin = (await http('GET', `/v1/jobs/${id}`)).body;
      if (isTerminal(twin.status)) break;
      await sleep(300);
    }
    assert.equal(twin.status, 'succeeded', `twin ${id}: ${JSON.stringify(twin.error)}`);
    const job = (await http('GET', `/v1/jobs/${ids[i]}`)).body;
    assert.deepEqual(pick(job.result.metrics), pick(twin.result.metrics), `${ids[i]} (attempt ${job.attempt}) matches its twin`);
  }
  console.log(
    `chaos: twins agree; ${((Date.now() - twinsStarted) / 1000).toFixed(0)} s for the twins, ${((Date.now() - started) / 1000).toFixed(0)} s in all (seed ${SEED})`,
  );
  assert.deepEqual(serverErrors, [], 'no request was answered with a server error');
  passed = true;
});
