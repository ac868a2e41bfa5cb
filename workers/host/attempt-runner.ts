/**
 * Runs each attempt of a training job in a child process the host can stop for sure.
 *
 * Why not BullMQ's sandboxed processor (which this replaces): its ChildPool puts back any child
 * still alive after an attempt, so a wasm trap or a heap grown to its limit went on to fail every
 * later job of every tenant; and it gives the host no handle on a job's child, so a step that
 * never ends could not be killed and its memory not watched. Here BullMQ runs a plain
 * processor (`process`) and the host supervises its own child:
 *
 * - a child is reused only after an attempt that ended cleanly (succeeded, or stopped on
 *   request) while it holds under half its memory cap; any failure kills it;
 * - the child's resident memory is sampled and the child killed past `maxMemoryBytes`
 *   (`resource_exhausted`, final); V8's heap is limited too (training-child.ts);
 * - a wasm trap (RuntimeError, Aborted()) is final: the same job would trap again;
 * - a stop (cancel, pause, shutdown, the runtime limit) is asked of the child, and a child that
 *   has not ended within `stopGraceMs` is killed: cancel and pause still end as asked, the job
 *   keeping its last checkpoint; the runtime limit fails `max_runtime`.
 */
// loaded with require: an ES import makes Node scan its CommonJS files for export names first (why: eslint.config.js)
import bullmq = require('bullmq');
import type { Job as QueueJob } from 'bullmq';
import type { Logger } from 'pino';
import type { Artifacts } from '../../src/artifacts/artifacts.js';
import { checkoutTask, unavailable } from '../../src/artifacts/task-artifacts.js';
import type { ChildError, ChildStopReason, ChildToHost } from '../../src/jobs/child-protocol.js';
import { DEFER_REASON, TrainingError, type Position, type TrainingMessage, type TrainingResult, type TrainingTask } from '../../src/jobs/task.js';
import { TrainingChild } from './training-child.js';

/** how often a running child's resident memory is read */
const MEMORY_SAMPLE_MS = 100;

export interface AttemptLimits {
  /** a child's cap on resident memory (TRAINING_CHILD_MAX_MEMORY_BYTES) */
  maxMemoryBytes: number;
  /** how long a child asked to stop may take before it is killed (STOP_GRACE_MS) */
  stopGraceMs: number;
  /** the runtime limit of a job whose spec sets none (JOB_DEFAULT_MAX_RUNTIME_SECONDS) */
  defaultMaxRuntimeSeconds: number;
  /** no attempt runs longer, whatever its spec says (JOB_MAX_RUNTIME_SECONDS) */
  maxRuntimeSeconds: number;
}

export interface AttemptRunnerOptions {
  limits: AttemptLimits;
  /** idle children kept for reuse: the worker's concurrency */
  maxIdle: number;
  /** XNNPACK threads of each training child (TRAINING_THREADS in its environment) */
  threads: number;
  /** where the task's files are fetched from and its checkpoints and model published to (task-artifacts.ts) */
  artifacts: Artifacts;
  log: Logger;
}

/**
 * What an attempt gives BullMQ: the child's result, or a stop the host made itself (the child
 * did not stop in time, or never began): the job then stands at its last checkpoint, which is
 * `stoppedAt` when this attempt wrote one.
 */
export type AttemptResult = TrainingResult | { outcome: 'cancelled'; metrics: Record<string, number>; stoppedAt: Position | null };

/** How an attempt ended: its result, or the error that fails it, and whether its child may run another. */
type Ending = { result: AttemptResult; reusable: boolean } | { error: Error };

const runtimeLimit = (task: TrainingTask, limits: AttemptLimits) => {
  const asked = task.spec.limits?.maxRuntimeSeconds;
  return { seconds: Math.min(asked ?? limits.defaultMaxRuntimeSeconds, limits.maxRuntimeSeconds), fromDefault: asked === undefined };
};

export class AttemptRunner {
  private readonly idle: TrainingChild[] = [];
  private readonly busy = new Set<TrainingChild>();
  private closed = false;

  constructor(private readonly opts: AttemptRunnerOptions) {}

  /** The BullMQ processor. It declares three parameters: BullMQ passes the abort signal only to such processors. */
  readonly process = (job: QueueJob<TrainingTask>, _token: string | undefined, signal: AbortSignal | undefined): Promise<AttemptResult> =>
    this.run(job, signal);

  private async run(job: QueueJob<TrainingTask>, signal: AbortSignal | undefined): Promise<AttemptResult> {
    const { artifacts } = this.opts;
    const checkout = await checkoutTask(artifacts, job.data);
    try {
      // recorded as the job's warn logs the way the child's are (worker-host.ts, onMessage), before anything the child says
      for (const message of checkout.warnings) {
        this.opts.log.warn({ jobId: job.id }, message);
        await job.updateProgress({ type: 'log', level: 'warn', message } satisfies TrainingMessage);
      }
      const result = await this.runChild(job, checkout.task, signal);
      // the model counts as trained once the store holds it (the host records it after this)
      if (result.outcome === 'succeeded' && checkout.task.data.train) {
        await artifacts.publish(checkout.task.modelDir).catch((err: unknown) => {
          throw unavailable('upload the trained model', err);
        });
      }
      const predictions = checkout.task.predictions;
      if (result.outcome === 'succeeded' && predictions) {
        await artifacts.publish(predictions.dir).catch((err: unknown) => {
          throw unavailable('upload the predictions file', err);
        });
      }
      return result;
    } finally {
      await checkout.release();
    }
  }

  private async runChild(job: QueueJob<TrainingTask>, task: TrainingTask, signal: AbortSignal | undefined): Promise<AttemptResult> {
    const child = this.takeIdle() ?? new TrainingChild({ maxMemoryBytes: this.opts.limits.maxMemoryBytes, threads: this.opts.threads });
    this.busy.add(child);
    let ending: Ending | undefined;
    try {
      ending = await new Attempt(child, job, task, signal, this.opts).run();
    } finally {
      this.busy.delete(child);
      const rss = child.rssBytes();
      const reusable =
        ending !== undefined &&
        'result' in ending &&
        ending.reusable &&
        !this.closed &&
        rss !== undefined &&
        rss < this.opts.limits.maxMemoryBytes / 2 &&
        this.idle.length < this.opts.maxIdle;
      if (reusable) this.idle.push(child);
      else await child.kill();
    }
    if ('error' in ending) throw ending.error;
    // the tenant gate moved the job back to the queue: end this entry without an outcome
    if (signal?.reason === DEFER_REASON && ending.result.outcome === 'cancelled') throw new bullmq.DelayedError('deferred: the tenant runs its cap of jobs');
    return ending.result;
  }

  /** An idle child still alive (one may have been killed from outside while it waited). */
  private takeIdle(): TrainingChild | undefined {
    for (let child = this.idle.pop(); child; child = this.idle.pop()) if (child.alive) return child;
    return undefined;
  }

  /** Kills every child: idle ones, and busy ones a forced close left behind. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.idle.splice(0), ...this.busy].map((c) => c.kill()));
  }
}

/** One attempt in one child, from `run` to its ending. */
class Attempt {
  private stopReason: ChildStopReason | undefined;
  /** the newest checkpoint this attempt wrote, where a killed pause resumes from */
  private lastCheckpoint: Position | null = null;
  /** the job's messages, recorded in order; the ending waits for them */
  private reported: Promise<void> = Promise.resolve();
  private started = false;
  private done = false;
  private finish: (e: Ending) => void = () => undefined;
  private readonly ending = new Promise<Ending>((ok) => (this.finish = ok));
  private readonly cleanups: (() => void)[] = [];

  constructor(
    private readonly child: TrainingChild,
    private readonly job: QueueJob<TrainingTask>,
    /** the job's task with this host's paths (task-artifacts.ts) */
    private readonly task: TrainingTask,
    private readonly signal: AbortSignal | undefined,
    private readonly opts: AttemptRunnerOptions,
  ) {}

  async run(): Promise<Ending> {
    const { limits } = this.opts;
    const sampler = setInterval(() => this.checkMemory(), MEMORY_SAMPLE_MS);
    // setTimeout takes at most 2^31 - 1 ms (24.8 days): a longer limit is waited for in laps
    const deadline = Date.now() + runtimeLimit(this.task, limits).seconds * 1000;
    let timer: NodeJS.Timeout | undefined;
    const lap = () => {
      const left = deadline - Date.now();
      if (left <= 0) this.stop('max_runtime');
      else timer = setTimeout(lap, Math.min(left, 2 ** 31 - 1));
    };
    lap();
    this.cleanups.push(
      () => clearInterval(sampler),
      () => clearTimeout(timer),
    );
    const onAbort = () => this.stop(this.signal!.reason as ChildStopReason);
    this.signal?.addEventListener('abort', onAbort, { once: true });
    this.cleanups.push(() => this.signal?.removeEventListener('abort', onAbort));
    this.cleanups.push(this.child.onMessage((m) => this.onMessage(m)));
    this.cleanups.push(this.child.onExit((e) => this.onExit(e.code, e.signal)));

    if (this.signal?.aborted) onAbort();
    else {
      this.child.ready.then(
        () => {
          if (this.stopReason !== undefined) return;
          this.started = true;
          this.child.send({ type: 'run', task: this.task });
        },
        () => undefined, // its exit ends the attempt
      );
    }
    try {
      return await this.ending;
    } finally {
      this.cleanups.forEach((c) => c());
    }
  }

  /** Ends the attempt once every message before the ending is recorded. */
  private end(e: Ending): void {
    if (this.done) return;
    this.done = true;
    void this.reported.then(() => this.finish(e));
  }

  private onMessage(m: ChildToHost): void {
    switch (m.type) {
      case 'message':
        if (m.message.type === 'checkpoint') this.lastCheckpoint = { epoch: m.message.epoch, step: m.message.step };
        this.report(m.message);
        return;
      case 'result':
        if (this.stopReason === 'max_runtime' && m.result.outcome === 'cancelled') return this.end({ error: this.maxRuntimeError() });
        return this.end({ result: m.result, reusable: true });
      case 'error':
        return this.end({ error: childFailure(m.error, this.task, this.opts.limits.maxMemoryBytes) });
    }
  }

  private report(m: TrainingMessage): void {
    // a message that cannot be recorded (Redis away) fails the attempt, as BullMQ's sandbox did;
    // so does a checkpoint or a built feature cache that cannot be published: one is recorded only once every host can read it
    const written =
      m.type === 'checkpoint'
        ? { dir: m.path, what: 'upload a checkpoint' }
        : m.type === 'featureCache' && m.path !== undefined
          ? { dir: m.path, what: 'upload the feature cache it built' }
          : undefined;
    this.reported = this.reported
      .then(() => (written !== undefined ? this.publish(written.dir, written.what) : undefined))
      .then(() => this.job.updateProgress(m))
      .catch((err: Error) => {
        this.done = true;
        this.finish({ error: err });
      });
  }

  private async publish(dir: string, what: string): Promise<void> {
    await this.opts.artifacts.publish(dir).catch((err: unknown) => {
      throw unavailable(what, err);
    });
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child.heapExhausted())
      return this.end({ error: memoryError(this.task, this.opts.limits.maxMemoryBytes, 'its JavaScript heap reached its limit') });
    this.end({ error: new TrainingError('worker_crashed', `the training process died (exit code ${code}, signal ${signal})`, { retryable: true }) });
  }

  private checkMemory(): void {
    const rss = this.child.rssBytes();
    if (rss === undefined || rss <= this.opts.limits.maxMemoryBytes) return;
    this.opts.log.warn({ jobId: this.job.id, rss, cap: this.opts.limits.maxMemoryBytes }, 'training child over its memory cap; killing it');
    this.end({ error: memoryError(this.task, this.opts.limits.maxMemoryBytes, `it used ${rss} bytes`) });
    void this.child.kill();
  }

  /** Asks the child to stop, and kills it if it has not ended within the grace. */
  private stop(reason: ChildStopReason): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    if (!this.started) {
      // nothing ran: the job stands where it stood, and a child that has loaded is as good as new
      return this.end(
        reason === 'max_runtime'
          ? { error: this.maxRuntimeError() }
          : { result: { outcome: 'cancelled', metrics: {}, stoppedAt: this.lastCheckpoint }, reusable: this.child.isReady },
      );
    }
    this.child.send({ type: 'stop', reason });
    const grace = setTimeout(() => this.killStuck(reason), this.opts.limits.stopGraceMs);
    this.cleanups.push(() => clearTimeout(grace));
  }

  private killStuck(reason: ChildStopReason): void {
    const { stopGraceMs } = this.opts.limits;
    const at = this.lastCheckpoint
      ? `its last checkpoint (epoch ${this.lastCheckpoint.epoch}, step ${this.lastCheckpoint.step})`
      : 'its last checkpoint, if any';
    this.opts.log.warn({ jobId: this.job.id, reason, stopGraceMs }, 'training child did not stop within the grace; killing it');
    this.report({
      type: 'log',
      level: 'warn',
      message: `the training process did not stop within ${stopGraceMs} ms of the ${reason.replace('_', ' ')} request and was killed; the job keeps ${at}`,
    });
    void this.child.kill();
    if (reason === 'max_runtime') this.end({ error: this.maxRuntimeError() });
    else this.end({ result: { outcome: 'cancelled', metrics: {}, stoppedAt: this.lastCheckpoint }, reusable: false });
  }

  private maxRuntimeError(): TrainingError {
    const { seconds, fromDefault } = runtimeLimit(this.task, this.opts.limits);
    const at = this.lastCheckpoint
      ? `its last checkpoint (epoch ${this.lastCheckpoint.epoch}, step ${this.lastCheckpoint.step}) is kept`
      : 'its checkpoints are kept';
    return new TrainingError(
      'max_runtime',
      `the attempt ran longer than limits.maxRuntimeSeconds (${seconds} s${fromDefault ? ', the default JOB_DEFAULT_MAX_RUNTIME_SECONDS' : ''}) and was stopped; ${at}. ` +
        `Expected a run within the limit: raise it (at most JOB_MAX_RUNTIME_SECONDS, ${this.opts.limits.maxRuntimeSeconds} s), or train fewer epochs`,
      { param: '/limits/maxRuntimeSeconds' },
    );
  }
}

/**
 * What a failure the child reported means: a wasm trap (RuntimeError, Aborted()) would come
 * again, so it is final; one because the wasm memory could not grow is the memory cap's kind of
 * failure; anything else keeps the child's code and finality (TrainingError's name says it).
 */
export function childFailure(e: ChildError, task: TrainingTask, maxMemoryBytes: number): Error {
  const trap = e.name === 'RuntimeError' || /^Aborted\(/.test(e.message);
  if (trap && /OOM|Cannot enlarge memory|out of memory/i.test(e.message))
    return memoryError(task, maxMemoryBytes, `its wasm memory could not grow (${e.message})`);
  if (trap) {
    return new TrainingError(
      'wasm_trap',
      `the training backend trapped (${e.message}) and its process was discarded; this job would trap again, so it is not retried. ` +
        `Expected a model and batch the backend can run: try a smaller hyperparameters.batchSize or model`,
      sizeParam(task),
    );
  }
  return Object.assign(new Error(e.message), e);
}

function memoryError(task: TrainingTask, cap: number, what: string): TrainingError {
  const batch = task.spec.hyperparameters?.batchSize;
  return new TrainingError(
    'resource_exhausted',
    `the training process went over its memory cap of ${cap} bytes (${(cap / 1024 ** 3).toFixed(2)} GiB, TRAINING_CHILD_MAX_MEMORY_BYTES): ${what}. ` +
      `Expected a job that fits: lower hyperparameters.batchSize${batch !== undefined ? ` (now ${batch})` : ''} or use a smaller model`,
    sizeParam(task),
  );
}

const sizeParam = (task: TrainingTask): { param?: string } => (task.spec.hyperparameters ? { param: '/hyperparameters/batchSize' } : {});
