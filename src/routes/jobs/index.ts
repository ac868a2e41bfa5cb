import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { fieldsProblem, HttpProblem, notFound } from '../../plugins/problem.js';
import { resolveTask } from '../../jobs/training-task.js';
import { IdParams, Page, Problem } from '../../schemas/common.js';
import { Checkpoint } from '../../schemas/event.js';
import { Job, JobListQuery, JobSpec } from '../../schemas/job.js';
import { newId } from '../../store/ids.js';
import { withTimeout } from '../../timeout.js';
import eventRoutes from './events.js';

const ENQUEUE_TIMEOUT_MS = 5000;

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'repeating a POST with the same key returns the first job instead of creating another' }),
  ),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts, queue, live } = app.deps;
  const tags = ['jobs'];

  app.post('/', {
    schema: {
      tags,
      summary: 'Create a training job',
      description:
        'Validates the spec, records the job and queues it. Answers 202 with the job (status `queued`). ' +
        'Datasets and base models are checked here: an unknown id or a mismatch is a 400 naming the field. ' +
        'With an `Idempotency-Key` header, repeating the request returns the same job.',
      body: JobSpec,
      headers: IdempotencyHeaders,
      response: { 202: Job, 400: Problem, 409: Problem, 429: Problem, 503: Problem },
    },
    handler: async (req, reply) => {
      const spec = req.body;
      const key = req.headers['idempotency-key'];
      const requestHash = createHash('sha256').update(JSON.stringify(spec)).digest('hex');
      if (key) {
        const prior = await store.jobs.byIdempotencyKey(key, req.tenant);
        if (prior) {
          if (prior.requestHash !== requestHash) {
            throw new HttpProblem(409, 'idempotency_conflict', 'Idempotency-Key reused', `key ${JSON.stringify(key)} was used for a different request (job ${prior.job.id})`);
          }
          return reply.code(202).header('idempotent-replayed', 'true').header('location', `/v1/jobs/${prior.job.id}`).send(prior.job);
        }
      }
      const id = newId('job');
      const { maxActiveJobsPerTenant } = app.deps.config;
      if ((await store.jobs.activeCount(req.tenant)) >= maxActiveJobsPerTenant) {
        throw new HttpProblem(429, 'too_many_jobs', 'Too many unfinished jobs', `tenant ${req.tenant} already has ${maxActiveJobsPerTenant} queued or running jobs; wait for some to finish`);
      }
      const resolved = await resolveTask(store, artifacts, { jobId: id, spec, tenant: req.tenant, webhookAllowedHosts: app.deps.config.webhookAllowedHosts });
      if ('errors' in resolved) throw fieldsProblem({ status: 400, slug: 'invalid_spec', title: 'The job spec is not valid', errors: resolved.errors });
      const created = await store.jobs.create({ id, spec, tenant: req.tenant, ...(key ? { idempotencyKey: key } : {}), requestHash });
      try {
        await withTimeout(queue.enqueue(resolved.task), { ms: ENQUEUE_TIMEOUT_MS, what: 'queueing the job' });
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
    schema: { tags, summary: 'List jobs, newest first', description: 'Filter by `status` and `type`. Cursor paging: pass `nextCursor` as `after` while `hasMore` is true.', querystring: JobListQuery, response: { 200: Page(Job) } },
    handler: (req) => store.jobs.list({ ...req.query, tenant: req.tenant }),
  });

  app.get('/:id', {
    schema: { tags, summary: 'Read a job', description: 'Status, progress (epoch and step), the latest epoch\'s metrics, and once finished the `result` (model id and final metrics such as testAccuracy) or the `error` (code, message, and `param`, a JSON pointer into the spec, when a field is to blame).', params: IdParams, response: { 200: Job, 404: Problem } },
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
        'it stops within one batch, keeps its last checkpoint and ends `cancelled`. A finished job gives 409.',
      params: IdParams,
      response: { 200: Job, 202: Job, 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const r = await store.jobs.requestCancel(req.params.id, req.tenant);
      if (r.outcome === 'missing') throw notFound('Job', req.params.id, '/id');
      if (r.outcome === 'terminal') {
        throw new HttpProblem(409, 'already_finished', 'Job already finished', `job ${req.params.id} is ${r.transition.job.status}`);
      }
      await live.publish(req.params.id, r.transition.events);
      if (r.outcome === 'cancelled') {
        await app.deps.webhooks.notify(r.transition.job).catch((err) => req.log.warn({ err }, 'could not queue the webhook'));
        await queue.removeWaiting(req.params.id).catch((err) => req.log.warn({ err }, 'could not remove the cancelled job from the queue'));
        return reply.code(200).send(r.transition.job);
      }
      await live.requestStop(req.params.id, 'cancel');
      return reply.code(202).send(r.transition.job);
    },
  });

  app.post('/:id/pause', {
    schema: {
      tags,
      summary: 'Pause a job',
      description:
        'A queued job is paused at once (200, status `paused`). A running job is told to stop (202, `pauseRequested: true`): ' +
        'within one batch it writes a checkpoint and ends `paused`. `POST /v1/jobs/{id}/resume` continues it from there. ' +
        'A job that is not queued or running gives 409.',
      params: IdParams,
      response: { 200: Job, 202: Job, 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const r = await store.jobs.requestPause(req.params.id, req.tenant);
      if (r.outcome === 'missing') throw notFound('Job', req.params.id, '/id');
      if (r.outcome === 'refused') {
        const job = r.transition.job;
        throw new HttpProblem(409, 'not_pausable', 'Job cannot be paused', `job ${job.id} is ${job.status}${job.cancelRequested ? ' and being cancelled' : ''}; only queued or running jobs can be paused`);
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
      description: 'Queues a paused job again (202, status `queued`); it continues from its last checkpoint. A job that is not paused gives 409.',
      params: IdParams,
      response: { 202: Job, 404: Problem, 409: Problem, 503: Problem },
    },
    handler: async (req, reply) => {
      const job = await store.jobs.get(req.params.id, req.tenant);
      if (!job) throw notFound('Job', req.params.id, '/id');
      const resolved = await resolveTask(store, artifacts, { jobId: job.id, spec: job.spec, tenant: req.tenant, webhookAllowedHosts: app.deps.config.webhookAllowedHosts });
      if ('errors' in resolved) throw fieldsProblem({ status: 409, slug: 'not_resumable', title: 'Job cannot run any more', errors: resolved.errors });
      const r = await store.jobs.resume(job.id, req.tenant);
      if (r.outcome === 'missing') throw notFound('Job', job.id, '/id');
      if (r.outcome === 'refused') throw new HttpProblem(409, 'not_paused', 'Job is not paused', `job ${job.id} is ${r.transition.job.status}; only paused jobs can be resumed`);
      try {
        await withTimeout(queue.requeue({ ...resolved.task, attemptBase: r.transition.job.attempt }), { ms: ENQUEUE_TIMEOUT_MS, what: 'queueing the job' });
      } catch (err) {
        // the job stays queued in the store; the worker side's reconciliation queues it when Redis is back
        // (its event is in the store too: streams read it there without the nudge this would publish)
        req.log.error({ err, jobId: job.id }, 'could not queue the resumed job');
        throw new HttpProblem(503, 'queue_unavailable', 'Queue unavailable', 'the job was resumed but the queue (Redis) is not reachable; it will be queued when the worker side reconnects');
      }
      await live.publish(job.id, r.transition.events);
      return reply.code(202).send(r.transition.job);
    },
  });

  app.get('/:id/checkpoints', {
    schema: {
      tags,
      summary: 'List the checkpoints of a job',
      description: 'One per saved point (each epoch end), oldest first, with the metrics at that point. A cancelled or paused job keeps its last one; a retried or resumed attempt continues from it.',
      params: IdParams,
      response: { 200: Type.Object({ data: Type.Array(Checkpoint) }), 404: Problem },
    },
    handler: async (req) => {
      if (!(await store.jobs.get(req.params.id, req.tenant))) throw notFound('Job', req.params.id, '/id');
      return { data: await store.checkpoints.list(req.params.id) };
    },
  });

  await app.register(eventRoutes);
};

export default routes;
