/**
 * Who launches a sweep's trials, and why it survives crashes. The store is the truth: advancing
 * a sweep (SweepStore.advance) is one transaction under the sweep row's lock that reads which
 * trials have ended, creates the next trials' job rows and ends the sweep when all are done; it
 * is idempotent, so anyone may call it any number of times. It is called
 * - by the API when the sweep is created (its first maxParallel trials),
 * - by the worker host when one of its trials ends (the after-job hook: the next trial starts
 *   at once), and
 * - by the worker host's reconciliation, for every running sweep on every pass: a host that dies
 *   between a trial's end and the next launch loses nothing, the next pass on any host does it.
 * A trial's job row committed but never queued (a crash right after the commit, or Redis away)
 * is queued by that same reconciliation, like any job the store has as queued. An API-side
 * scheduler would need one leader among API replicas and would stop with the API; the worker
 * hosts already reconcile, and the row lock makes concurrent hosts harmless.
 */
import type { Logger } from 'pino';
import type { Artifacts } from '../artifacts/artifacts.js';
import { resolveTask } from '../jobs/training-task.js';
import { cancelJob, type CancelParts } from '../queue/cancel-job.js';
import type { Job } from '../schemas/job.js';
import type { Sweep } from '../schemas/sweep.js';
import { goalOf } from './objective.js';
import { ashaStop, medianStop } from './selection.js';

export interface SweepLauncherParts extends CancelParts {
  artifacts: Artifacts;
  log: Pick<Logger, 'warn' | 'info'>;
  /** MAX_ACTIVE_JOBS_PER_TENANT: trials launch only while their tenant is under it */
  maxActiveJobs: number;
  webhookAllowedHosts: readonly string[];
}

const DEFAULT_MIN_TRIALS = 3;
const DEFAULT_GRACE_EPOCHS = 1;
const DEFAULT_MIN_EPOCHS = 1;
const DEFAULT_REDUCTION_FACTOR = 3;

export class SweepLauncher {
  constructor(private readonly parts: SweepLauncherParts) {}

  /** Launches what may run now and queues it; ends the sweep when every trial has ended. */
  async advance(id: string): Promise<void> {
    const { store, queue, live, artifacts, webhooks, log } = this.parts;
    for (;;) {
      const a = await store.sweeps.advance(id, { maxActiveJobs: this.parts.maxActiveJobs });
      await live.publish(id, a.events);
      // a trial that cannot even be queued fails at once and frees its place: advance again then
      let freed = false;
      for (const { transition: t, priority } of a.launched) {
        const jobId = t.job.id;
        await live.publish(jobId, t.events);
        const resolved = await resolveTask(store, artifacts, {
          jobId,
          spec: t.job.spec,
          tenant: a.tenant,
          webhookAllowedHosts: this.parts.webhookAllowedHosts,
        });
        if ('errors' in resolved) {
          const [first] = resolved.errors;
          const failed = await store.jobs.failed(jobId, null, {
            code: 'unresolvable',
            message: `cannot run: ${first.pointer} ${first.detail}`,
            param: first.pointer,
          });
          await live.publish(jobId, failed?.events ?? []);
          freed = true;
          continue;
        }
        // the job is queued in the store: should Redis be away, reconciliation queues it later
        await queue.enqueue(resolved.task, { priority }).catch((err) => log.warn({ err, jobId, sweepId: id }, 'could not queue a trial; reconciliation will'));
      }
      if (a.ended) {
        log.info({ sweepId: id, status: a.ended.status, best: a.ended.best?.jobId }, 'sweep ended');
        await webhooks.notifySweep(a.ended).catch((err) => log.warn({ err, sweepId: id }, 'could not queue the sweep webhook'));
      }
      if (!freed) return;
    }
  }

  /** Every running sweep, one at a time; one that cannot be advanced now does not hold up the others. */
  async advanceAll(): Promise<void> {
    for (const id of await this.parts.store.sweeps.runningIds()) {
      await this.advance(id).catch((err) => this.parts.log.warn({ err: (err as Error).message, sweepId: id }, 'could not advance this sweep; will try again'));
    }
  }

  /** Cancels a running sweep and every trial still live; null when there is no such sweep, else the sweep and whether it was running. */
  async cancel(id: string, tenant: string): Promise<{ sweep: Sweep; wasRunning: boolean } | null> {
    const { store, live, webhooks, log } = this.parts;
    const r = await store.sweeps.cancel(id, tenant);
    if (r.outcome === 'missing') return null;
    if (r.outcome === 'terminal') return { sweep: r.sweep, wasRunning: false };
    await live.publish(id, r.events);
    for (const jobId of r.live) await cancelJob(this.parts, jobId, tenant, `sweep ${id} cancelled`);
    await webhooks.notifySweep(r.sweep).catch((err) => log.warn({ err, sweepId: id }, 'could not queue the sweep webhook'));
    return { sweep: (await store.sweeps.get(id))!, wasRunning: true };
  }

  /** After a trial reported an epoch: stops it when the sweep's earlyTermination rule says so. */
  async judge(job: Pick<Job, 'id' | 'sweepId'>): Promise<void> {
    const { store, live, log } = this.parts;
    if (!job.sweepId) return;
    const sweep = await store.sweeps.get(job.sweepId);
    const rule = sweep?.spec.earlyTermination;
    if (!sweep || !rule || sweep.status !== 'running') return;
    const curves = await store.sweeps.curves(sweep.id, sweep.spec.objective.metric);
    const mine = curves.get(job.id) ?? [];
    const others = [...curves].filter(([jobId]) => jobId !== job.id).map(([, c]) => c);
    const goal = goalOf(sweep.spec.objective);
    const reason =
      rule.kind === 'asha'
        ? ashaStop(mine, others, {
            goal,
            minEpochs: rule.minEpochs ?? DEFAULT_MIN_EPOCHS,
            reductionFactor: rule.reductionFactor ?? DEFAULT_REDUCTION_FACTOR,
          })
        : medianStop(mine, others, {
            goal,
            minTrials: rule.minTrials ?? DEFAULT_MIN_TRIALS,
            graceEpochs: rule.graceEpochs ?? DEFAULT_GRACE_EPOCHS,
          });
    if (!reason) return;
    const ev = await store.sweeps.stopTrial(sweep.id, job.id, { epoch: mine.length, reason });
    if (!ev) return;
    await live.publish(sweep.id, [ev]);
    const tenant = await store.sweeps.tenantOf(sweep.id);
    log.info({ sweepId: sweep.id, jobId: job.id, reason }, 'stopping a trial early');
    if (tenant !== null) await cancelJob(this.parts, job.id, tenant, 'early termination');
  }
}
