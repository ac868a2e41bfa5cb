/**
 * The worker host: a BullMQ Worker whose processor runs each attempt in a training child
 * process (attempt-runner.ts). It records what the child reports in the store, publishes it
 * for live streams, and finishes the job there when BullMQ says the attempt ended.
 */
// loaded with require: an ES import makes Node scan its CommonJS files for export names first (why: eslint.config.js)
import bullmq = require('bullmq');
import type { Job as QueueJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Artifacts } from '../../src/artifacts/artifacts.js';
import { directoryBytes } from '../../src/artifacts/disk-usage.js';
import type { LiveEvents, StopReason } from '../../src/queue/live-events.js';
import { logConnectionErrors } from '../../src/queue/redis-server.js';
import { QUEUE_NAME, type TrainingQueue } from '../../src/queue/training-queue.js';
import type { Queryable } from '../../src/store/db.js';
import type { Transition } from '../../src/store/jobs.js';
import type { Store } from '../../src/store/store.js';
import type { WebhookQueue } from '../../src/webhooks/webhook-queue.js';
import { describeFeatureCache } from '../../src/jobs/feature-cache.js';
import { DEFER_REASON, type TrainingMessage, type TrainingTask } from '../../src/jobs/task.js';
import { AttemptRunner, type AttemptLimits, type AttemptResult } from './attempt-runner.js';
import { TenantGate } from './tenant-gate.js';
import type { SweepLauncher } from '../../src/sweeps/launcher.js';
import { TERMINAL_STATUSES } from '../../src/schemas/job.js';

export interface WorkerHostOptions {
  connection: Redis;
  store: Store;
  live: LiveEvents;
  /** to give a job back to the queue when this host shuts down mid-job */
  queue: TrainingQueue;
  webhooks: WebhookQueue;
  /** this host's artifacts: where tasks' files are fetched to and trained models written */
  artifacts: Artifacts;
  log: Logger;
  concurrency: number;
  /** XNNPACK threads of each training child (TRAINING_THREADS in its environment) */
  trainingThreads: number;
  lockDurationMs: number;
  /** each training child's memory cap, the grace of a stop, the runtime limits */
  limits: AttemptLimits;
  /** MAX_RUNNING_JOBS_PER_TENANT (0: no cap), see tenant-gate.ts */
  maxRunningPerTenant: number;
  /** launches a sweep's next trials when one ends, and stops trials by the sweep's early-termination rule */
  sweeps: Pick<SweepLauncher, 'advance' | 'judge'>;
}

/** How long a job deferred by its tenant's running cap waits before it is offered again. */
const DEFER_MS = 1000;

/** The job's attempt number across all its queue entries (see TrainingTask.attemptBase). */
const attemptOf = (job: QueueJob<TrainingTask>) => (job.data.attemptBase ?? 0) + job.attemptsStarted;

export class WorkerHost {
  readonly worker: bullmq.Worker<TrainingTask, AttemptResult>;
  readonly runner: AttemptRunner;
  /** per job, the tail of its chain of store writes: a job's messages are recorded in the order they came */
  private readonly chains = new Map<string, Promise<void>>();
  private shuttingDown = false;
  private readonly gate: TenantGate;
  /** jobs this host has told to stop (until their entry ends): a stop is asked of a job once, whichever way it came */
  private readonly stopping = new Set<string>();

  constructor(private readonly opts: WorkerHostOptions) {
    this.gate = new TenantGate({ store: opts.store, log: opts.log, maxRunningPerTenant: opts.maxRunningPerTenant, deferMs: DEFER_MS });
    this.runner = new AttemptRunner({
      limits: opts.limits,
      maxIdle: opts.concurrency,
      threads: opts.trainingThreads,
      artifacts: opts.artifacts,
      log: opts.log,
    });
    this.worker = new bullmq.Worker<TrainingTask, AttemptResult>(QUEUE_NAME, this.runner.process, {
      connection: opts.connection,
      concurrency: opts.concurrency,
      // the host's event loop stays free (training is in the child), so a short lock is
      // renewed reliably and a dead host's job is taken over soon after its lock expires
      lockDuration: opts.lockDurationMs,
      stalledInterval: opts.lockDurationMs,
      // a stall is a crashed host: the job resumes from its checkpoint, so allow several
      maxStalledCount: 10,
    });
    this.worker.on('active', (job) => void this.enqueue(job, () => this.onActive(job)));
    this.worker.on('progress', (job, data) => void this.enqueue(job, () => this.onMessage(job, data as TrainingMessage)));
    this.worker.on('completed', (job, result) => {
      this.stopping.delete(job.id!);
      void this.enqueue(job, () => this.onCompleted(job, result));
    });
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      this.stopping.delete(job.id!);
      void this.enqueue(job, () => this.onFailed(job, err));
    });
    logConnectionErrors(this.worker, opts.log, 'worker');
    opts.live.onStop((jobId, reason) => this.stop(jobId, reason, 'stopping running job'));
  }

  /** Asks the child running `jobId` here to stop, once. */
  private stop(jobId: string, reason: StopReason, message: string): void {
    if (this.stopping.has(jobId) || !this.worker.cancelJob(jobId, reason)) return;
    this.stopping.add(jobId);
    this.opts.log.info({ jobId, reason }, message);
  }

  private enqueue(job: QueueJob<TrainingTask>, fn: () => Promise<void>): Promise<void> {
    const id = job.id!;
    const next = (this.chains.get(id) ?? Promise.resolve()).then(fn).catch((err) => this.opts.log.error({ err, jobId: id }, 'could not record a job update'));
    this.chains.set(id, next);
    void next.then(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
    return next;
  }

  /**
   * Records the end of a queue entry that BullMQ has finished while the store still has its
   * job live: the host that ran it died between the two (reconciliation finds these). Every
   * write is guarded by the entry's attempt, so a host that records it after all changes nothing.
   */
  async settle(job: QueueJob<TrainingTask>): Promise<void> {
    const state = await job.getState();
    if (state !== 'completed' && state !== 'failed') return;
    this.opts.log.warn({ jobId: job.id, state, attempt: attemptOf(job) }, 'the queue finished this job but the store never heard; recording it now');
    // a stop that was neither a pause nor a cancel was a host shutting down: hand the job back for it
    if (state === 'completed') await this.enqueue(job, () => this.onCompleted(job, job.returnvalue as AttemptResult, true));
    else await this.enqueue(job, () => this.onFailed(job, new Error(job.failedReason)));
  }

  /**
   * A stop the store holds for a running attempt, seen on the attempt's own reports: a cancel or pause
   * reaches this host by Redis pub/sub (onStop), which drops what a subscriber misses while it
   * reconnects, and the attempt would then train to its end.
   */
  private stopIfRequested(t: Transition | null): void {
    if (t === null) return;
    const { id, cancelRequested, pauseRequested } = t.job;
    const reason = cancelRequested ? 'cancel' : pauseRequested ? 'pause' : undefined;
    if (reason !== undefined) this.stop(id, reason, 'stopping running job: its stop message was missed, the store has it');
  }

  private async publish(t: Transition | null): Promise<void> {
    if (t && t.events.length > 0) await this.opts.live.publish(t.job.id, t.events);
    if (t) await this.opts.webhooks.notify(t.job);
    // a trial that ended makes room for its sweep's next (should this host die first, reconciliation does it)
    const sweepId = t?.job.sweepId;
    if (sweepId && TERMINAL_STATUSES.includes(t.job.status)) {
      await this.opts.sweeps.advance(sweepId).catch((err) => this.opts.log.warn({ err, sweepId }, 'could not advance the sweep; reconciliation will'));
    }
  }

  private async onActive(job: QueueJob<TrainingTask>): Promise<void> {
    if (await this.gate.defer(job)) {
      this.worker.cancelJob(job.id!, DEFER_REASON);
      return;
    }
    const t = await this.opts.store.jobs.started(job.id!, attemptOf(job));
    if (!t) {
      // cancelled or paused while it waited, or an older attempt's leftovers: do not let it train
      this.worker.cancelJob(job.id!, 'cancel');
      return;
    }
    this.opts.log.info({ jobId: job.id, attempt: attemptOf(job) }, 'job started');
    await this.publish(t);
  }

  private async onMessage(job: QueueJob<TrainingTask>, m: TrainingMessage): Promise<void> {
    const { jobs, checkpoints } = this.opts.store;
    const id = job.id!;
    const attempt = attemptOf(job);
    switch (m.type) {
      case 'started':
        return this.publish(await jobs.backend(id, attempt, m.backend));
      case 'progress': {
        const t = await jobs.progress(id, attempt, m.progress, m.metrics?.loss);
        this.stopIfRequested(t);
        return this.publish(t);
      }
      case 'metrics': {
        const t = await jobs.epochMetrics(id, attempt, m.epoch, m.metrics);
        this.stopIfRequested(t);
        await this.publish(t);
        if (t?.job.sweepId)
          await this.opts.sweeps.judge(t.job).catch((err) => this.opts.log.warn({ err, jobId: id }, "could not apply the sweep's early termination"));
        return;
      }
      case 'checkpoint': {
        // what it takes on disk counts against the tenant's storage quota
        const bytes = await directoryBytes(m.path);
        return this.publish(
          await jobs.event(id, attempt, 'checkpoint', { epoch: m.epoch, step: m.step, metrics: m.metrics }, (q) =>
            checkpoints.add(q, id, { epoch: m.epoch, step: m.step, attempt, metrics: m.metrics, path: m.path, bytes }),
          ),
        );
      }
      case 'log':
        return this.publish(await jobs.event(id, attempt, 'log', { level: m.level, message: m.message }));
      case 'featureCache': {
        const { report } = m;
        const baseModelId = job.data.baseModelId;
        const datasetId = job.data.data.train?.id;
        // the same name on every host: one cache, one row, however many hosts hold a copy
        const path = m.path === undefined ? undefined : this.opts.artifacts.relativePath(m.path);
        // a built cache's bytes count against the tenant's storage quota until its base or dataset goes
        const bytes = m.path === undefined ? 0 : await directoryBytes(m.path);
        const record = (q: Queryable) =>
          path === undefined || baseModelId === undefined || datasetId === undefined
            ? Promise.resolve()
            : this.opts.store.featureCaches.add(q, { path, jobId: id, baseModelId, datasetId, bytes });
        return this.publish(await jobs.event(id, attempt, 'log', { level: 'info', message: describeFeatureCache(report), featureCache: report }, record));
      }
    }
  }

  private async onCompleted(job: QueueJob<TrainingTask>, result: AttemptResult, handBack = this.shuttingDown): Promise<void> {
    const { jobs, models } = this.opts.store;
    const task = job.data;
    const attempt = attemptOf(job);
    if (result.outcome === 'cancelled') return this.onStopped(job, result.stoppedAt ?? null, handBack);
    // the test set's report (classes, per-class accuracy, confusion matrix) goes with the final metrics
    const metrics = { ...result.metrics, ...result.report };
    // the trained model is described by its labelled training set (data.source of a domain_adaptation
    // job); an evaluate job has none and trains no model: its result names the model it evaluated
    const { train } = task.data;
    // this host's copy of the model (the task's path is the resolving process's, maybe another machine's)
    const modelDir = this.opts.artifacts.modelDir(task.modelId);
    const bytes = train === undefined ? 0 : await directoryBytes(modelDir);
    const record = (q: Queryable) =>
      train === undefined
        ? Promise.resolve()
        : models.insert(q, {
            id: task.modelId,
            name: task.spec.metadata?.name ?? `${task.spec.type} ${task.jobId}`,
            status: 'ready',
            jobId: task.jobId,
            baseModelId: task.baseModelId ?? null,
            datasetIds: Object.fromEntries(Object.entries(task.spec.data).filter((e): e is [string, string] => typeof e[1] === 'string')),
            metrics,
            inputShape: train.featureShape,
            classes: train.classes,
            preprocessing: train.preprocessing,
            dir: modelDir,
            bytes,
          });
    // a predict job's file: its bytes, on this host's copy, count in the tenant's storage quota with the job's result
    const predictions = result.predictions && {
      ...result.predictions,
      bytes: await directoryBytes(this.opts.artifacts.predictionsDir(task.jobId)),
      url: `/v1/jobs/${task.jobId}/predictions`,
    };
    const t = await jobs.succeeded(
      task.jobId,
      attempt,
      {
        modelId: result.modelId,
        metrics,
        ...(result.featureCache ? { featureCache: result.featureCache } : {}),
        ...(predictions ? { predictions } : {}),
      },
      record,
    );
    this.opts.log.info({ jobId: task.jobId, metrics: result.metrics }, t ? 'job succeeded' : 'stale attempt finished; result ignored');
    await this.publish(t);
  }

  /** The child stopped early on request: record what was asked for, or hand the job back when this host is going away. */
  private async onStopped(job: QueueJob<TrainingTask>, stoppedAt: { epoch: number; step: number } | null, handBack: boolean): Promise<void> {
    const { jobs } = this.opts.store;
    const id = job.id!;
    const attempt = attemptOf(job);
    const row = await jobs.get(id);
    if (row?.pauseRequested) return this.publish(await jobs.paused(id, attempt, stoppedAt));
    if (row?.cancelRequested) return this.publish(await jobs.cancelled(id, attempt, 'cancelled by request'));
    if (handBack) {
      const t = await jobs.handedBack(id, attempt, stoppedAt);
      if (t) {
        await this.opts.queue.requeue({ ...job.data, attemptBase: attempt });
        this.opts.log.info({ jobId: id, stoppedAt }, 'shutting down: checkpointed the job and gave it back to the queue');
      }
      return this.publish(t);
    }
  }

  private async onFailed(job: QueueJob<TrainingTask>, err: Error & { code?: string; param?: string }): Promise<void> {
    const { jobs } = this.opts.store;
    const attempt = attemptOf(job);
    const error = { code: err.code ?? 'internal_error', message: err.message, ...(err.param ? { param: err.param } : {}) };
    // BullMQ has already decided: the job is 'failed' for good, or waiting/delayed for a retry
    const state = await job.getState();
    if (state !== 'failed' && (await jobs.get(job.id!))?.cancelRequested) {
      // a retry would only be cancelled again: end it here and drop the queued retry
      await job.remove().catch(() => undefined);
      await this.publish(await jobs.cancelled(job.id!, attempt, 'cancelled by request'));
      return;
    }
    if (state === 'failed') {
      this.opts.log.warn({ jobId: job.id, error }, 'job failed');
      await this.publish(await jobs.failed(job.id!, attempt, error));
    } else {
      const delay = state === 'delayed' ? job.delay || null : null;
      this.opts.log.warn({ jobId: job.id, error, attempt }, 'job attempt failed; retrying');
      await this.publish(await jobs.retrying(job.id!, attempt, error, delay));
    }
  }

  /**
   * Stops taking jobs and asks running ones to checkpoint and stop; they go back to the
   * queue for another host. A child that has not stopped within the stop grace is killed and
   * its job handed back as it stood at its last checkpoint. Should BullMQ itself not finish
   * closing (Redis away) within `graceMs` more, the worker is closed by force; its jobs are
   * picked up again once their locks expire.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.shuttingDown = true;
    this.worker.cancelAllJobs('shutdown');
    const closing = this.worker.close();
    const timer = new Promise<'timeout'>((ok) => setTimeout(() => ok('timeout'), this.opts.limits.stopGraceMs + graceMs).unref());
    if ((await Promise.race([closing, timer])) === 'timeout') await this.worker.close(true);
    await this.runner.close();
    await Promise.all(this.chains.values());
  }
}
