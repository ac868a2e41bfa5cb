import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { fieldsProblem, HttpProblem, notFound } from '../../plugins/problem.js';
import type { FieldError } from '../../field-error.js';
import { admitTask } from '../../jobs/admission.js';
import { cancelJob } from '../../queue/cancel-job.js';
import { requireRedis } from '../require-redis.js';
import { checkRuntimeLimit } from '../../jobs/spec-rules.js';
import { resolveTask } from '../../jobs/training-task.js';
import { IdParams, Page, Problem } from '../../schemas/common.js';
import { Checkpoint } from '../../schemas/event.js';
import { Job, JobEstimate, JobListQuery, JobSpec } from '../../schemas/job.js';
import { newId } from '../../store/ids.js';
import { withTimeout } from '../../timeout.js';
import checkpointModelRoutes from './checkpoint-model.js';
import eventRoutes from './events.js';
import predictionsRoutes from './predictions.js';
import { StorageQuota } from '../../artifacts/storage-quota.js';
import { requireRoom } from '../quota-problem.js';
import { hideWebhookSecrets } from '../../plugins/write-only-secrets.js';

const ENQUEUE_TIMEOUT_MS = 5000;

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'repeating a POST with the same key returns the first job instead of creating another' }),
  ),
});

const CreateQuery = Type.Object(
  {
    dryRun: Type.Boolean({
      default: false,
      description:
        'validate and estimate only: answers 200 with the estimate (or the 400 a create would get), creates and queues nothing, counts toward no quota',
    }),
  },
  { additionalProperties: false },
);

const DryRun = Type.Object(
  {
    object: Type.Literal('job_estimate'),
    type: Type.String(),
    estimate: JobEstimate,
    limits: Type.Object({ maxMemoryBytes: Type.Integer(), maxFlops: Type.Number() }, { description: 'the limits the estimate was held against' }),
  },
  { $id: 'JobDryRun' },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts, queue, live } = app.deps;
  const tags = ['jobs'];
  app.addHook('preSerialization', hideWebhookSecrets);
  const costLimits = () => ({ maxMemoryBytes: app.deps.config.jobMaxMemoryBytes, maxFlops: app.deps.config.jobMaxFlops });
  const { config } = app.deps;
  const quota = new StorageQuota({
    db: store.db,
    quotaBytes: config.tenantStorageQuotaBytes,
    datasetMaxBytes: config.datasetMaxBytes,
    imageMaxPixels: config.imageMaxPixels,
  });

  /**
   * The 429 for a tenant at MAX_ACTIVE_JOBS_PER_TENANT: paused jobs count, so pausing, creating
   * and resuming cannot get around it. The store counts and adds under one lock.
   */
  const tooManyJobs = (tenant: string, others: number, paused?: string) => {
    const max = app.deps.config.maxActiveJobsPerTenant;
    return new HttpProblem(
      429,
      'too_many_jobs',
      'Too many unfinished jobs',
      `tenant ${tenant} already has ${others} unfinished jobs (queued, running or paused; MAX_ACTIVE_JOBS_PER_TENANT is ${max}); ${paused ? `job ${paused} stays paused: ` : ''}wait for some to finish, or cancel paused ones`,
    );
  };

  /**
   * Checks the spec against its datasets and models and its estimated cost against the limits.
   * `resume` re-checks a stored job, whose spec the caller cannot change in this request: its
   * problems are conflicts with the job's state (409), where a create's are a bad body (400).
   */
  const admit = async (id: string, spec: JobSpec, { mode, tenant }: { mode: 'body' | 'resume'; tenant: string }) => {
    // a stored job keeps its limit: the worker host holds every attempt to JOB_MAX_RUNTIME_SECONDS anyway
    if (mode === 'body') {
      const tooLong: FieldError[] = [];
      checkRuntimeLimit(spec, app.deps.config.jobMaxRuntimeSeconds, (pointer, detail) => tooLong.push({ pointer, in: 'body', detail }));
      if (tooLong.length > 0) throw fieldsProblem({ status: 400, slug: 'invalid_spec', title: 'The job spec is not valid', errors: tooLong });
    }
    const resolved = await resolveTask(store, artifacts, { jobId: id, spec, tenant, webhookAllowedHosts: app.deps.config.webhookAllowedHosts });
    if ('errors' in resolved) {
      if (mode === 'resume') throw fieldsProblem({ status: 409, slug: 'not_resumable', title: 'Job cannot run any more', errors: resolved.errors });
      throw fieldsProblem({ status: 400, slug: 'invalid_spec', title: 'The job spec is not valid', errors: resolved.errors });
    }
    const admitted = await admitTask(artifacts, resolved.task, costLimits());
    if ('errors' in admitted) {
      throw fieldsProblem({
        status: mode === 'resume' ? 409 : 400,
        slug: 'job_too_large',
        title: 'The job would exceed a resource limit',
        errors: admitted.errors,
      });
    }
    // a predict job's file will count in the tenant's storage quota: there must be room for the most it can take
    if (admitted.estimate.outputBytes !== undefined) await requireRoom(quota, tenant, admitted.estimate.outputBytes);
    return { task: resolved.task, estimate: admitted.estimate };
  };

  const requireQueue = () => requireRedis(app.deps.redis);

  app.post('/', {
    schema: {
      tags,
      summary: 'Create a training job',
      description:
        'Validates the spec, estimates its cost, records the job and queues it. Answers 202 with the job (status `queued`) and its `estimate`. ' +
        'Datasets and base models are checked here: an unknown id or a mismatch is a 400 naming the field. ' +
        'A job whose estimated peak memory (JOB_MAX_MEMORY_BYTES) or work (JOB_MAX_FLOPS) is over the limit is a 400 `job_too_large` pointing at the field to change ' +
        '(e.g. /hyperparameters/batchSize with the largest batch that fits), with the estimate and the limit. ' +
        'A tenant with MAX_ACTIVE_JOBS_PER_TENANT unfinished jobs (queued, running or paused) gets 429 `too_many_jobs`. ' +
        "A `predict` job whose file could take more than 1 GiB is a 400 at `/output/topK`, and more than the tenant's storage quota leaves a 409 `storage_quota_exceeded`. " +
        '`?dryRun=true` validates and estimates without creating anything (200). ' +
        'With an `Idempotency-Key` header, repeating the request returns the same job.',
      body: JobSpec,
      querystring: CreateQuery,
      headers: IdempotencyHeaders,
      response: { 200: DryRun, 202: Job, 400: Problem, 409: Problem, 429: Problem, 503: Problem },
    },
    handler: async (req, reply) => {
      const spec = req.body;
      const { dryRun } = req.query;
      const limits = costLimits();
      if (dryRun) {
        const { estimate } = await admit(newId('job'), spec, { mode: 'body', tenant: req.tenant });
        return reply.code(200).send({ object: 'job_estimate' as const, type: spec.type, estimate, limits });
      }
      const key = req.headers['idempotency-key'];
      const requestHash = createHash('sha256').update(JSON.stringify(spec)).digest('hex');
      if (key) {
        const prior = await store.jobs.byIdempotencyKey(key, req.tenant);
        if (prior) {
          if (prior.requestHash !== requestHash) {
            throw new HttpProblem(
              409,
              'idempotency_conflict',
              'Idempotency-Key reused',
              `key ${JSON.stringify(key)} was used for a different request (job ${prior.job.id})`,
            );
          }
          return reply.code(202).header('idempotent-replayed', 'true').header('location', `/v1/jobs/${prior.job.id}`).send(prior.job);
        }
      }
      const id = newId('job');
      const { task, estimate } = await admit(id, spec, { mode: 'body', tenant: req.tenant });
      const r = await store.jobs.create(
        { id, spec, tenant: req.tenant, ...(key ? { idempotencyKey: key } : {}), requestHash, estimate },
        { maxActive: app.deps.config.maxActiveJobsPerTenant },
      );
      if (r.outcome === 'too_many') throw tooManyJobs(req.tenant, r.active);
      const created = r.transition;
      try {
        await withTimeout(queue.enqueue(task, { priority: r.active + 1 }), { ms: ENQUEUE_TIMEOUT_MS, what: 'queueing the job' });
      } catch (err) {
        req.log.error({ err, jobId: id }, 'could not queue the job');
        await store.jobs.discard(id);
        throw new HttpProblem(503, 'queue_unavailable', 'Queue unavailable', 'the job queue (Redis) is not reachable; nothing was created, retry later');
      }
      await live.publish(id, created.events);
      return reply.code(202).header('location', `/v1/jobs/${id}`).send(created.job);
    },
  });

  app.get('/', {
    schema: {
      tags,
      summary: 'List jobs, newest first',
      description: 'Filter by `status` and `type`. Cursor paging: pass `nextCursor` as `after` while `hasMore` is true.',
      querystring: JobListQuery,
      response: { 200: Page(Job) },
    },
    handler: (req) => store.jobs.list({ ...req.query, tenant: req.tenant }),
  });

  app.get('/:id', {
    schema: {
      tags,
      summary: 'Read a job',
      description:
        "Status, progress (epoch and step), the latest epoch's metrics, and once finished the `result` (model id and final metrics such as testAccuracy) or the `error` (code, message, and `param`, a JSON pointer into the spec, when a field is to blame).",
      params: IdParams,
      response: { 200: Job, 404: Problem },
    },
    handler: async (req) => {
      const job = await store.jobs.get(req.params.id, req.tenant);
      if (!job) throw notFound('Job', req.params.id, '/id');
      return job;
    },
  });

  app.post('/:id/cancel', {
    schema: {
      tags,
      summary: 'Cancel a job',
      description:
        'A queued job is cancelled at once (200, status `cancelled`). A running job is told to stop (202, `cancelRequested: true`); ' +
        'it stops within one batch (a batch still running after STOP_GRACE_MS is ended by killing its process), keeps its last checkpoint and ends `cancelled`. A finished job gives 409. ' +
        'With the queue (Redis) unreachable the answer is 503 and nothing changes.',
      params: IdParams,
      response: { 200: Job, 202: Job, 404: Problem, 409: Problem, 503: Problem },
    },
    handler: async (req, reply) => {
      await requireQueue();
      const r = await cancelJob({ ...app.deps, log: req.log }, req.params.id, req.tenant);
      if (r.outcome === 'missing') throw notFound('Job', req.params.id, '/id');
      if (r.outcome === 'terminal') {
        throw new HttpProblem(409, 'already_finished', 'Job already finished', `job ${req.params.id} is ${r.transition.job.status}`);
      }
      return reply.code(r.outcome === 'cancelled' ? 200 : 202).send(r.transition.job);
    },
  });

  app.post('/:id/pause', {
    schema: {
      tags,
      summary: 'Pause a job',
      description:
        'A queued job is paused at once (200, status `paused`). A running job is told to stop (202, `pauseRequested: true`): ' +
        'within one batch it writes a checkpoint and ends `paused` (a batch still running after STOP_GRACE_MS is ended by killing its process; the job then stands at its last checkpoint). ' +
        '`POST /v1/jobs/{id}/resume` continues it from there. ' +
        'A job that is not queued or running gives 409. With the queue (Redis) unreachable the answer is 503 and nothing changes.',
      params: IdParams,
      response: { 200: Job, 202: Job, 404: Problem, 409: Problem, 503: Problem },
    },
    handler: async (req, reply) => {
      await requireQueue();
      const r = await store.jobs.requestPause(req.params.id, req.tenant);
      if (r.outcome === 'missing') throw notFound('Job', req.params.id, '/id');
      if (r.outcome === 'refused') {
        const job = r.transition.job;
        throw new HttpProblem(
          409,
          'not_pausable',
          'Job cannot be paused',
          `job ${job.id} is ${job.status}${job.cancelRequested ? ' and being cancelled' : ''}; only queued or running jobs can be paused`,
        );
      }
      await live.publish(req.params.id, r.transition.events);
      if (r.outcome === 'paused') {
        await queue.removeWaiting(req.params.id).catch((err) => req.log.warn({ err }, 'could not take the paused job off the queue'));
        return reply.code(200).send(r.transition.job);
      }
      await live.requestStop(req.params.id, 'pause');
      return reply.code(202).send(r.transition.job);
    },
  });

  app.post('/:id/resume', {
    schema: {
      tags,
      summary: 'Resume a paused job',
      description:
        'Queues a paused job again (202, status `queued`); it continues from its last checkpoint. A job that is not paused gives 409. ' +
        "The job is admitted again: its datasets and models must still be there (409 `not_resumable`), its estimate within today's limits (409 `job_too_large`), " +
        'and its tenant within MAX_ACTIVE_JOBS_PER_TENANT (429 `too_many_jobs`).',
      params: IdParams,
      response: { 202: Job, 404: Problem, 409: Problem, 429: Problem, 503: Problem },
    },
    handler: async (req, reply) => {
      const job = await store.jobs.get(req.params.id, req.tenant);
      if (!job) throw notFound('Job', req.params.id, '/id');
      if (job.status !== 'paused')
        throw new HttpProblem(409, 'not_paused', 'Job is not paused', `job ${job.id} is ${job.status}; only paused jobs can be resumed`);
      const { task, estimate } = await admit(job.id, job.spec, { mode: 'resume', tenant: req.tenant });
      const r = await store.jobs.resume(job.id, { tenant: req.tenant, estimate, maxActive: app.deps.config.maxActiveJobsPerTenant });
      if (r.outcome === 'missing') throw notFound('Job', job.id, '/id');
      if (r.outcome === 'too_many') throw tooManyJobs(req.tenant, r.active, job.id);
      if (r.outcome === 'refused')
        throw new HttpProblem(409, 'not_paused', 'Job is not paused', `job ${job.id} is ${r.transition.job.status}; only paused jobs can be resumed`);
      try {
        await withTimeout(queue.requeue({ ...task, attemptBase: r.transition.job.attempt }, { priority: r.active + 1 }), {
          ms: ENQUEUE_TIMEOUT_MS,
          what: 'queueing the job',
        });
      } catch (err) {
        // the job stays queued in the store; the worker side's reconciliation queues it when Redis is back
        // (its event is in the store too: streams read it there without the nudge this would publish)
        req.log.error({ err, jobId: job.id }, 'could not queue the resumed job');
        throw new HttpProblem(
          503,
          'queue_unavailable',
          'Queue unavailable',
          'the job was resumed but the queue (Redis) is not reachable; it will be queued when the worker side reconnects',
        );
      }
      await live.publish(job.id, r.transition.events);
      return reply.code(202).send(r.transition.job);
    },
  });

  app.get('/:id/checkpoints', {
    schema: {
      tags,
      summary: 'List the checkpoints of a job',
      description:
        'One per saved point (each epoch end), oldest first, with the metrics at that point. A cancelled or paused job keeps its last one; a retried or resumed attempt continues from it.',
      params: IdParams,
      response: { 200: Type.Object({ data: Type.Array(Checkpoint) }), 404: Problem },
    },
    handler: async (req) => {
      if (!(await store.jobs.get(req.params.id, req.tenant))) throw notFound('Job', req.params.id, '/id');
      return { data: await store.checkpoints.list(req.params.id) };
    },
  });

  await app.register(eventRoutes);
  await app.register(checkpointModelRoutes);
  await app.register(predictionsRoutes);
};

export default routes;
