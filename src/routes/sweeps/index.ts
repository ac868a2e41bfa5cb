import { randomInt } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FieldError } from '../../field-error.js';
import { admitTask, formatBytes } from '../../jobs/admission.js';
import type { JobEstimate } from '../../jobs/estimate.js';
import { checkRuntimeLimit } from '../../jobs/spec-rules.js';
import { resolveTask } from '../../jobs/training-task.js';
import { fieldsProblem, HttpProblem, notFound } from '../../plugins/problem.js';
import { IdParams, Page, Problem } from '../../schemas/common.js';
import { Sweep, SweepEvent, SweepListQuery, SweepSpec } from '../../schemas/sweep.js';
import { newId } from '../../store/ids.js';
import { SweepLauncher } from '../../sweeps/launcher.js';
import { objectiveProblems } from '../../sweeps/objective.js';
import { firstPerPointer, planTrials, trialProblem, type PlannedTrial } from '../../sweeps/trials.js';
import { eventLogRoutes } from '../event-stream.js';
import { requireRedis } from '../require-redis.js';
import { hideWebhookSecrets } from '../../plugins/write-only-secrets.js';

const invalid = (errors: FieldError[]) => fieldsProblem({ status: 400, slug: 'invalid_sweep', title: 'The sweep is not valid', errors });

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts, config } = app.deps;
  const tags = ['sweeps'];
  app.addHook('preSerialization', hideWebhookSecrets);
  const launcher = new SweepLauncher({
    ...app.deps,
    log: app.log,
    maxActiveJobs: config.maxActiveJobsPerTenant,
    webhookAllowedHosts: config.webhookAllowedHosts,
  });

  /** Every trial resolved against the tenant's datasets and models and admitted by cost, as a job create would be; their estimates. */
  const admitTrials = async (trials: PlannedTrial[], tenant: string): Promise<{ errors: FieldError[] } | { estimates: JobEstimate[] }> => {
    const errors: FieldError[] = [];
    const estimates: JobEstimate[] = [];
    const limits = { maxMemoryBytes: config.jobMaxMemoryBytes, maxFlops: config.jobMaxFlops };
    for (const [index, t] of trials.entries()) {
      const resolved = await resolveTask(store, artifacts, { jobId: newId('job'), spec: t.spec, tenant, webhookAllowedHosts: config.webhookAllowedHosts });
      if ('errors' in resolved) {
        errors.push(...resolved.errors.map((e) => trialProblem(index, t.parameters, e)));
        continue;
      }
      const admitted = await admitTask(artifacts, resolved.task, limits);
      if ('errors' in admitted) errors.push(...admitted.errors.map((e) => trialProblem(index, t.parameters, e)));
      estimates.push(admitted.estimate);
    }
    return errors.length > 0 ? { errors: firstPerPointer(errors) } : { estimates };
  };

  app.post('/', {
    schema: {
      tags,
      summary: 'Create a sweep',
      description:
        'Searches job specs: each trial is `template` with the `parameters` (keyed by JSON pointers into it) set to its values, and runs as an ordinary job ' +
        '(its `sweepId` names the sweep). Every trial is built, checked and estimated now, as a job create would be: a value that makes a bad spec is a 400 ' +
        "naming the parameter (e.g. `/parameters/~1method~1weight`) and the trial; the sum of the trials' estimated work must stay within SWEEP_MAX_FLOPS. " +
        'Answers 202 with the sweep, whose first `maxParallel` trials are queued; the next ones start as trials end. ' +
        'Trials count toward MAX_ACTIVE_JOBS_PER_TENANT: while the tenant is at it, the sweep waits.',
      body: SweepSpec,
      response: { 202: Sweep, 400: Problem, 503: Problem },
    },
    handler: async (req, reply) => {
      const body = req.body;
      const seed = body.seed ?? randomInt(2 ** 31 - 1);
      const planned = planTrials(body, seed);
      if ('errors' in planned) throw invalid(planned.errors);
      const { trials } = planned;
      const errors = objectiveProblems(
        body,
        trials.map((t) => t.spec),
      );
      checkRuntimeLimit(body.template, config.jobMaxRuntimeSeconds, (pointer, detail) => errors.push({ pointer: `/template${pointer}`, in: 'body', detail }));
      if (body.maxParallel > config.maxActiveJobsPerTenant) {
        errors.push({
          pointer: '/maxParallel',
          in: 'body',
          detail: `is ${body.maxParallel}; expected at most ${config.maxActiveJobsPerTenant} (MAX_ACTIVE_JOBS_PER_TENANT)`,
        });
      }
      if (errors.length > 0) throw invalid(errors);
      const admitted = await admitTrials(trials, req.tenant);
      if ('errors' in admitted)
        throw fieldsProblem({ status: 400, slug: 'invalid_sweep', title: 'A trial of the sweep is not valid', errors: admitted.errors });
      const flops = admitted.estimates.reduce((sum, e) => sum + e.flops, 0);
      const maxTrialMemoryBytes = Math.max(...admitted.estimates.map((e) => e.memoryBytes));
      if (flops > config.sweepMaxFlops) {
        throw fieldsProblem({
          status: 400,
          slug: 'sweep_too_large',
          title: 'The sweep would exceed a resource limit',
          errors: [
            {
              pointer: body.algorithm === 'grid' ? '/parameters' : '/maxTrials',
              in: 'body',
              detail: `${trials.length} trials add up to an estimated ${flops.toPrecision(3)} FLOPs, over the limit of ${config.sweepMaxFlops.toPrecision(3)} (SWEEP_MAX_FLOPS); expected fewer trials or smaller ones (the largest needs ${formatBytes(maxTrialMemoryBytes)})`,
            },
          ],
        });
      }
      await requireRedis(app.deps.redis);
      const id = newId('swp');
      const spec = { ...body, seed, maxTrials: trials.length };
      const events = await store.sweeps.create({
        id,
        tenant: req.tenant,
        spec,
        estimate: { trials: trials.length, flops, maxTrialMemoryBytes },
        trials: trials.map((t, i) => ({ ...t, estimate: admitted.estimates[i] })),
      });
      await app.deps.live.publish(id, events);
      await launcher.advance(id);
      const sweep = await store.sweeps.get(id);
      if (!sweep) throw new HttpProblem(500, 'internal', 'Internal error', `sweep ${id} vanished while it was created`);
      return reply.code(202).header('location', `/v1/sweeps/${id}`).send(sweep);
    },
  });

  app.get('/', {
    schema: {
      tags,
      summary: 'List sweeps, newest first',
      description: 'Filter by `status`. Cursor paging: pass `nextCursor` as `after` while `hasMore` is true.',
      querystring: SweepListQuery,
      response: { 200: Page(Sweep) },
    },
    handler: (req) => store.sweeps.list({ ...req.query, tenant: req.tenant }),
  });

  app.get('/:id', {
    schema: {
      tags,
      summary: 'Read a sweep',
      description:
        "Its status, every trial (`jobId` once launched, `parameters`, `status`, the `objective` of its finished model, the `latest` epoch's value, and `stopped` when early termination ended it) " +
        'and the `best` trial so far with the `reason` (the metric, its value and epoch, the goal, and the runner-up).',
      params: IdParams,
      response: { 200: Sweep, 404: Problem },
    },
    handler: async (req) => {
      const sweep = await store.sweeps.get(req.params.id, req.tenant);
      if (!sweep) throw notFound('Sweep', req.params.id, '/id');
      return sweep;
    },
  });

  app.post('/:id/cancel', {
    schema: {
      tags,
      summary: 'Cancel a sweep',
      description:
        'No more trials start, and every live trial is cancelled as `POST /v1/jobs/{id}/cancel` would (a running one stops within one batch). ' +
        'Answers 200 with the sweep (status `cancelled`). A sweep that has ended gives 409. With the queue (Redis) unreachable the answer is 503 and nothing changes.',
      params: IdParams,
      response: { 200: Sweep, 404: Problem, 409: Problem, 503: Problem },
    },
    handler: async (req) => {
      await requireRedis(app.deps.redis);
      const r = await launcher.cancel(req.params.id, req.tenant);
      if (!r) throw notFound('Sweep', req.params.id, '/id');
      if (!r.wasRunning) throw new HttpProblem(409, 'already_finished', 'Sweep already finished', `sweep ${req.params.id} is ${r.sweep.status}`);
      return r.sweep;
    },
  });

  await app.register(
    eventLogRoutes({
      what: 'Sweep',
      tags,
      summary: 'The event log of a sweep (its status, trials launched, ended and stopped), as JSON pages or a server-sent event stream',
      event: SweepEvent,
      exists: async (id, tenant) => (await store.sweeps.tenantOf(id)) === tenant,
      list: (id, after, limit) => store.sweeps.events.list(id, after, limit),
      ends: (ev) => ev.type === 'status' && ev.data.status !== 'running',
      ended: async (id) => (await store.sweeps.get(id))?.status !== 'running',
    }),
  );
};

export default routes;
