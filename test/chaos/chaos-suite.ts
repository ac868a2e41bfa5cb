/**
 * The chaos suite (npm run test:chaos): the API and worker hosts as separate processes on real
 * PostgreSQL and a real redis-server, while training children and worker hosts are SIGKILLed at
 * random moments, the API is killed and restarted, and Redis restarts. Every accepted job must
 * end exactly once, nothing may be lost or finish twice, checkpoints only move forward, SSE
 * clients see every event once, and each resumed job must match its uninterrupted twin.
 *
 * Two rounds, one after the other. `local`: one worker host, every process on one shared data
 * directory (the embedded layout). `s3`: ARTIFACTS_URL on an s3rver object store, the API and two
 * worker hosts each on its own data directory, sharing nothing but PostgreSQL, Redis and the
 * store; a killed worker host comes back on an empty directory (a new machine), and the store
 * itself goes away for a moment and comes back. There, every recorded checkpoint and every
 * trained model must also be complete in the store.
 *
 * The schedule comes from a seeded PRNG and is paced by training steps, not time: CHAOS_SEED=<n>
 * replays a run's actions, in order, each after the same number of steps trained (where a
 * step falls in an attempt still depends on timing). CHAOS_JOBS and CHAOS_S3_JOBS set the number
 * a round starts with (default 10 and 6); where they all end before every kind of action has
 * happened once (a fast machine), a few more follow until it has. CHAOS_ROUNDS=local or
 * CHAOS_ROUNDS=s3 runs one round.
 * The processes' logs are kept, and their directory printed, when a round fails.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import bullmq = require('bullmq');
import { mulberry32, shuffle } from '../../src/artifacts/ingest/random.js';
import { createRedis, freePort, startRedisServer, type RedisServer } from '../../src/queue/redis-server.js';
import { QUEUE_NAME } from '../../src/queue/training-queue.js';
import { TERMINAL_STATUSES, type JobStatus } from '../../src/schemas/job.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { childProcesses } from '../helpers/processes.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { readSse } from '../helpers/sse.js';
import { SERVICE_ENV } from '../helpers/service-env.js';

const SERVER = fileURLToPath(new URL('../../src/server.js', import.meta.url));

function envInteger(name: string, fallback: () => number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback();
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name}=${JSON.stringify(raw)}: expected a positive integer`);
  return n;
}
const SEED = envInteger('CHAOS_SEED', () => randomInt(1, 1_000_000));

type Action = 'kill child' | 'kill worker host' | 'kill api' | 'restart redis' | 'object store outage';

interface Round {
  name: 'local' | 's3';
  jobs: number;
  /** worker hosts running at once */
  hosts: number;
  /** the actions of one round of the schedule: every kind happens in each of its rounds */
  actions: Action[];
  /**
   * Steps between two actions, drawn from [min, min + spread). An epoch of the jobs below is 94
   * steps, a job 470: the longest gaps still leave more actions than one round of the schedule.
   */
  gap: { min: number; spread: number };
}

const KILLS: Action[] = ['kill child', 'kill child', 'kill child', 'kill worker host', 'kill worker host', 'kill api', 'restart redis'];
const ROUNDS: Round[] = [
  // 10 jobs: about 20 actions, at least 11
  { name: 'local', jobs: envInteger('CHAOS_JOBS', () => 10), hosts: 1, actions: KILLS, gap: { min: 40, spread: 360 } },
  // 6 jobs on two hosts: about 17 actions; fewer where one poll sees many steps at once (8, one full round, in a run at load 35)
  { name: 's3', jobs: envInteger('CHAOS_S3_JOBS', () => 6), hosts: 2, actions: [...KILLS, 'object store outage'], gap: { min: 40, spread: 240 } },
];
const only = process.env.CHAOS_ROUNDS;
if (only !== undefined && only !== '' && !ROUNDS.some((r) => r.name === only))
  throw new Error(`CHAOS_ROUNDS=${JSON.stringify(only)}: expected one of ${ROUNDS.map((r) => r.name).join(', ')}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isTerminal = (status: unknown) => TERMINAL_STATUSES.includes(status as JobStatus);
const alive = (p: ChildProcess | undefined): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null;

async function kill(p: ChildProcess | undefined) {
  if (!alive(p)) return;
  const gone = new Promise((ok) => p.once('exit', ok));
  p.kill('SIGKILL');
  await gone;
}

/** Far longer than any recovery here (a lock expiring, a host starting, a retry's backoff) takes. */
const STALL_MS = 3 * 60_000;

/**
 * PostgreSQL, Redis, the object store (s3 round), the API and the worker hosts of one round.
 * In the local round every process shares `root/shared`; in the s3 round each has its own
 * directory, and a worker host started again gets a new, empty one.
 */
class Cluster {
  api: ChildProcess | undefined;
  readonly workers: ChildProcess[] = [];
  /** 5xx answers: none of the requests below needs Redis or the object store, and PostgreSQL stays up, so each is a bug */
  readonly serverErrors: string[] = [];
  /** ends the SSE clients' reconnect loops, so that a failed run does not hang */
  readonly finished = new AbortController();
  private hostsStarted = 0;

  private constructor(
    readonly round: Round,
    readonly root: string,
    readonly logDir: string,
    readonly pg: PostgresServer,
    public redis: RedisServer,
    readonly redisPort: number,
    readonly s3: S3Server | undefined,
    readonly apiPort: number,
  ) {}

  static async start(round: Round): Promise<Cluster> {
    const root = mkdtempSync(join(tmpdir(), `tfjs-adapt-chaos-${round.name}-`));
    const logDir = mkdtempSync(join(tmpdir(), `tfjs-adapt-chaos-${round.name}-logs-`));
    const pg = await startPostgres();
    const redisPort = await freePort();
    const redis = await startRedisServer(join(root, 'redis'), { port: redisPort });
    const s3 = round.name === 's3' ? await startS3() : undefined;
    const c = new Cluster(round, root, logDir, pg, redis, redisPort, s3, await freePort());
    c.api = c.spawn('api', 'api');
    for (let i = 0; i < round.hosts; i++) c.workers.push(c.spawnWorker());
    return c;
  }

  get base(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  private spawn(mode: 'api' | 'worker', name: string): ChildProcess {
    const dataDir = join(this.root, this.s3 ? name : 'shared');
    mkdirSync(dataDir, { recursive: true });
    const log = openSync(join(this.logDir, `${name}.log`), 'a');
    const child = spawn(process.execPath, [SERVER, mode], {
      env: {
        ...process.env,
        ...(this.s3?.env ?? {}),
        REDIS_URL: `redis://127.0.0.1:${this.redisPort}`,
        DATABASE_URL: this.pg.url,
        DATA_DIR: dataDir,
        ...SERVICE_ENV,
        PORT: String(this.apiPort),
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

  /** A worker host: in the s3 round, each on a directory of its own that no process used before. */
  private spawnWorker(): ChildProcess {
    return this.spawn('worker', `worker-${++this.hostsStarted}`);
  }

  async act(action: Action, random: () => number): Promise<boolean> {
    if (action === 'kill child') {
      const kids = this.workers.flatMap((w) => (w.pid ? childProcesses(w.pid) : []));
      if (kids.length === 0) return false;
      try {
        process.kill(kids[Math.floor(random() * kids.length)], 'SIGKILL');
      } catch (err) {
        // it ended by itself since we looked
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
        throw err;
      }
    } else if (action === 'kill worker host') {
      const i = Math.floor(random() * this.workers.length);
      await kill(this.workers[i]);
      await sleep(300);
      this.workers[i] = this.spawnWorker();
    } else if (action === 'kill api') {
      await kill(this.api);
      this.api = this.spawn('api', 'api');
    } else if (action === 'restart redis') {
      await this.redis.stop();
      this.redis = await startRedisServer(join(this.root, 'redis'), { port: this.redisPort });
    } else if (this.s3) {
      // long enough for uploads and downloads under way to fail, and for attempts to be retried into it
      await this.s3.stop();
      await sleep(500 + Math.floor(random() * 2000));
      await this.s3.start();
    } else {
      throw new Error(`the ${this.round.name} round has no object store to take away`);
    }
    return true;
  }

  async http(method: string, path: string, body?: unknown): Promise<any> {
    for (let i = 0; ; i++) {
      let res: Response;
      try {
        res = await fetch(this.base + path, { method, ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
      } catch (err) {
        // the API may be down on purpose: try again
        if (i >= 300) throw err;
        await sleep(200);
        continue;
      }
      const answer = { status: res.status, body: await res.json() };
      if (res.status >= 500) this.serverErrors.push(`${method} ${path}: ${res.status} ${JSON.stringify(answer.body)}`);
      return answer;
    }
  }

  /**
   * An SSE client that keeps reconnecting with Last-Event-ID until it has the terminal status
   * event: a stream cut by an API that died can look like one that ended.
   */
  async follow(jobId: string): Promise<number[]> {
    const ids: number[] = [];
    let over = false;
    while (!this.finished.signal.aborted) {
      try {
        const { messages } = await readSse(`${this.base}/v1/jobs/${jobId}/events`, {
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

  /** Where each unfinished job stands in the store and in BullMQ, and whether the worker hosts live. */
  async diagnose(jobs: any[]): Promise<string> {
    const connection = createRedis(`redis://127.0.0.1:${this.redisPort}`, { maxRetriesPerRequest: 1 });
    const queue = new bullmq.Queue(QUEUE_NAME, { connection });
    try {
      const lines = this.workers.map(
        (w) => `worker host ${w.pid} ${alive(w) ? 'running' : 'gone'}, children ${w.pid ? childProcesses(w.pid).join(' ') || '-' : '-'}`,
      );
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

  async stop(passed: boolean): Promise<void> {
    this.finished.abort();
    await kill(this.api);
    for (const w of this.workers) await kill(w);
    await this.redis.stop();
    await this.s3?.destroy();
    await this.pg.stop();
    rmSync(this.root, { recursive: true, force: true });
    if (passed) rmSync(this.logDir, { recursive: true, force: true });
    else console.log(`chaos round ${this.round.name}, seed ${SEED}, failed; the processes' logs are in ${this.logDir}`);
  }
}

const LEARNING = ['loss', 'accuracy', 'testLoss', 'testAccuracy'];
const pick = (m: Record<string, unknown>) => Object.fromEntries(LEARNING.map((k) => [k, m[k]]));
const checkpointName = (c: { epoch: number; step: number }) => `epoch-${String(c.epoch).padStart(4, '0')}-step-${String(c.step).padStart(8, '0')}`;

async function playRound(round: Round): Promise<void> {
  console.log(`chaos round ${round.name}: seed ${SEED} (set CHAOS_SEED=${SEED} to replay this schedule), ${round.jobs} jobs, ${round.hosts} worker hosts`);
  const c = await Cluster.start(round);
  let passed = false;
  try {
    await play(c, round);
    passed = true;
  } finally {
    await c.stop(passed);
  }
}

const resumedFromCheckpoint = (events: any[]) => events.some((e: any) => e.type === 'log' && String(e.data.message).startsWith('resuming from checkpoint'));

/** How many of the jobs resumed from a checkpoint at least once: without one, no twin comparison tells anything. */
async function resumedJobs(c: Cluster, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) if (resumedFromCheckpoint((await c.http('GET', `/v1/jobs/${id}/events?limit=1000`)).body.data)) n++;
  return n;
}

async function play(c: Cluster, round: Round): Promise<void> {
  const random = mulberry32(SEED);
  const stepsToNextAction = () => round.gap.min + Math.floor(random() * round.gap.spread);
  function* schedule(): Generator<Action> {
    for (;;)
      for (const i of shuffle(
        round.actions.map((_, k) => k),
        random,
      ))
        yield round.actions[i];
  }
  const started = Date.now();
  const train = (await c.http('POST', '/v1/datasets', { name: 'chaos-train', source: { builtin: 'mnist', split: 'train', limit: 3000 } })).body.id;
  const testSet = (await c.http('POST', '/v1/datasets', { name: 'chaos-test', source: { builtin: 'mnist', split: 'test', limit: 300 } })).body.id;
  const specs: object[] = [];
  const ids: string[] = [];
  const streams: Promise<number[]>[] = [];
  const submit = async (n: number) => {
    for (let k = 0; k < n; k++) {
      const spec = {
        type: 'train',
        model: { architecture: { kind: 'mlp', hidden: [32], activation: 'relu' } },
        data: { train, test: testSet },
        hyperparameters: { epochs: 5, batchSize: 32, seed: 100 + specs.length, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } },
      };
      const res = await c.http('POST', '/v1/jobs', spec);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      specs.push(spec);
      ids.push(res.body.id);
      streams.push(c.follow(res.body.id));
    }
  };
  await submit(round.jobs);
  // a fast machine can finish the jobs before one full round of the schedule has happened: then
  // more jobs come, a few at a time, up to this many in all
  const maxJobs = 4 * round.jobs;

  // Chaos is paced by training, not by the clock: the next action waits until the jobs have
  // trained a random number of steps since the last one, and have been seen training since it,
  // so every action meets jobs at work (not a host still starting), and a slow machine gets as
  // much chaos per job as a fast one. Steps beyond the mark count towards the next action: one
  // poll can see a hundred steps or more.
  const actions: Action[] = [];
  const missing = () => [...new Set(round.actions)].filter((a) => !actions.includes(a));
  const plan = schedule();
  const positions = new Map<string, number>();
  let steps = 0;
  let mark = stepsToNextAction();
  let moved = false;
  let lastChange = Date.now();
  let lastState = '';
  for (;;) {
    const jobs = (await c.http('GET', '/v1/jobs?limit=200')).body.data.filter((j: any) => ids.includes(j.id));
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
    if (Date.now() - lastChange > STALL_MS) assert.fail(`nothing changed for ${STALL_MS / 1000} s; actions: ${actions.join(', ')}\n${await c.diagnose(jobs)}`);
    if (jobs.every((j: any) => isTerminal(j.status))) {
      const lacking = [...missing().map((a) => `any "${a}"`), ...((await resumedJobs(c, ids)) > 0 ? [] : ['a resume from a checkpoint'])];
      if (lacking.length === 0) break;
      assert.ok(ids.length < maxJobs, `${ids.length} jobs ended before ${lacking.join(', ')}; actions: ${actions.join(', ')}`);
      await submit(2 * round.hosts);
      continue;
    }
    if (steps < mark || !moved) {
      await sleep(250);
      continue;
    }
    mark += stepsToNextAction();
    moved = false;
    const action = plan.next().value as Action;
    if (await c.act(action, random)) actions.push(action);
  }
  const chaosSeconds = (Date.now() - started) / 1000;

  const seen = await Promise.all(streams);
  let attempts = 0;
  let resumed = 0;
  for (const [i, id] of ids.entries()) {
    const job = (await c.http('GET', `/v1/jobs/${id}`)).body;
    assert.equal(job.status, 'succeeded', `${id}: ${JSON.stringify(job.error)}`);
    const events = (await c.http('GET', `/v1/jobs/${id}/events?limit=1000`)).body.data;
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
    assert.equal((await c.http('GET', `/v1/models/${job.result.modelId}`)).status, 200);
    if (c.s3) {
      // recorded means every host can read it: complete (manifest and all) in the store
      const stored = new Set(await c.s3.keys(`jobs/${id}/checkpoints/`));
      for (const k of (await c.http('GET', `/v1/jobs/${id}/checkpoints`)).body.data)
        assert.ok(stored.has(`jobs/${id}/checkpoints/${checkpointName(k)}/.manifest.json`), `${id}: checkpoint at step ${k.step} is in the store`);
      assert.ok((await c.s3.keys(`models/${job.result.modelId}/`)).includes(`models/${job.result.modelId}/.manifest.json`), `${id}: its model is in the store`);
    }
    attempts += starts.length;
    if (resumedFromCheckpoint(events)) resumed++;
  }
  const count = (a: Action) => actions.filter((x) => x === a).length;
  console.log(
    `chaos round ${round.name}: ${ids.length} jobs, ${steps} steps trained in ${attempts} attempts, ${resumed} jobs resumed from a checkpoint; ` +
      [...new Set(round.actions)].map((a) => `${count(a)} × ${a}`).join(', ') +
      ` in ${chaosSeconds.toFixed(0)} s`,
  );
  console.log(`chaos round ${round.name} actions: ${actions.join(', ')}`);

  // the twins, without chaos: same specs, same backend
  const twinsStarted = Date.now();
  const twins: string[] = [];
  for (const spec of specs) twins.push((await c.http('POST', '/v1/jobs', spec)).body.id);
  for (const [i, id] of twins.entries()) {
    let twin: any;
    for (;;) {
      twin = (await c.http('GET', `/v1/jobs/${id}`)).body;
      if (isTerminal(twin.status)) break;
      await sleep(300);
    }
    assert.equal(twin.status, 'succeeded', `twin ${id}: ${JSON.stringify(twin.error)}`);
    const job = (await c.http('GET', `/v1/jobs/${ids[i]}`)).body;
    assert.deepEqual(pick(job.result.metrics), pick(twin.result.metrics), `${ids[i]} (attempt ${job.attempt}) matches its twin`);
  }
  console.log(
    `chaos round ${round.name}: twins agree; ${((Date.now() - twinsStarted) / 1000).toFixed(0)} s for the twins, ${((Date.now() - started) / 1000).toFixed(0)} s in all (seed ${SEED})`,
  );
  assert.deepEqual(c.serverErrors, [], 'no request was answered with a server error');
}

for (const round of ROUNDS) {
  test(
    `chaos, ${round.name} round: ${round.jobs}+ jobs on ${round.hosts} worker host(s) under SIGKILLs and restarts end exactly once and match their twins`,
    { timeout: 30 * 60_000, skip: only !== undefined && only !== '' && only !== round.name },
    () => playRound(round),
  );
}
