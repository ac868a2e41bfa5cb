import { Ajv, type Options as AjvOptions } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyBaseLogger, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import './deps.js';
import type { AppDeps } from './deps.js';
import { authPlugin, identifier } from './plugins/auth.js';
import { dashboardPlugin } from './plugins/dashboard.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { openapiPlugin } from './plugins/openapi.js';
import { problemPlugin, sendProblem } from './plugins/problem.js';
import { queueBoardPlugin } from './plugins/queue-board.js';
import { serializerCompiler } from './plugins/serializer.js';
import { ConversionLeases } from './artifacts/ingest/conversion-leases.js';
import { PredictPool } from './predict/pool.js';
import { JobSpec } from './schemas/job.js';
import datasetRoutes from './routes/datasets/index.js';
import healthRoutes from './routes/health.js';
import jobRoutes from './routes/jobs/index.js';
import metricsRoutes from './routes/metrics.js';
import modelRoutes from './routes/models/index.js';
import sweepRoutes from './routes/sweeps/index.js';

function ajv(opts: AjvOptions) {
  // code.optimize off: the job and sweep spec unions compile in half the CPU (~75 instead of ~140 ms
  // each at every start), for about 1 µs more per validated body (measured, Node 22)
  // inlineRefs off: a $ref to a shared schema (below) calls its one compiled function instead of copying it in
  const a = new Ajv({ allErrors: true, useDefaults: true, strict: false, removeAdditional: false, code: { optimize: false }, inlineRefs: false, ...opts });
  addFormats.default(a);
  return a;
}

// Bodies are checked strictly: a wrong type is an error, never coerced, and an unknown
// property is an error, never silently dropped. Query strings and headers are text, so
// there numbers are coerced from strings. One pair per process: Ajv keeps what it compiled by
// schema, so every app built here (tests build many) compiles each route schema once.
const strict = ajv({ coerceTypes: false });
const lenient = ajv({ coerceTypes: true });

/**
 * A sweep's `template` is a whole JobSpec: its validator refers to the one compiled for
 * POST /v1/jobs instead of holding a second copy of the union (~70 ms of CPU less at every
 * start). Errors keep their pointers: Ajv reports a referenced schema's errors at the data's path.
 */
const SHARED_IDS = new Set([JobSpec.$id]);
for (const a of [strict, lenient]) a.addSchema(JobSpec);
const sharing = new WeakMap<object, unknown>();

/** `schema` with every embedded (not top-level) shared schema replaced by a $ref to it; the same copy for the same schema, so Ajv's cache by schema still hits. */
function referencingShared(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || SHARED_IDS.has((schema as { $id?: string }).$id)) return schema;
  let copy = sharing.get(schema);
  if (copy === undefined) sharing.set(schema, (copy = replaceShared(schema)));
  return copy;
}

function replaceShared(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(replaceShared);
  if (schema === null || typeof schema !== 'object') return schema;
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id === 'string' && SHARED_IDS.has(id)) return { $ref: id };
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, replaceShared(v)]));
}

export async function buildApp(deps: AppDeps, opts: { logger?: FastifyBaseLogger | boolean } = {}) {
  const app = Fastify({
    ...(typeof opts.logger === 'object' ? { loggerInstance: opts.logger } : { logger: opts.logger ?? false }),
    bodyLimit: deps.config.bodyLimitBytes,
    trustProxy: false,
    // errors the router raises before any route runs (bad URL encoding, overlong ids) are problems too
    frameworkErrors: (err, _req, reply) => {
      void sendProblem(reply, {
        status: err.statusCode ?? 400,
        slug: (err.code ?? 'bad_request').toLowerCase(),
        title: 'The request URL is not valid',
        detail: err.message,
      });
    },
  } as FastifyServerOptions).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : lenient).compile(referencingShared(schema) as object));
  app.setSerializerCompiler(serializerCompiler);

  // the API speaks JSON (and multipart for uploads): anything else is a 415, not a string body
  app.removeContentTypeParser('text/plain');
  app.decorate('deps', deps);
  const predictions = new PredictPool(deps.config.predict);
  app.decorate('predictions', predictions);
  app.addHook('onClose', async () => predictions.close());
  // renews this process's dataset conversions and model imports; sweeps those of stopped processes before the API serves
  const leases = new ConversionLeases({ store: deps.store, artifacts: deps.artifacts, log: app.log });
  app.decorate('leases', leases);
  app.addHook('onReady', () => leases.start());
  app.addHook('onClose', () => leases.stop());
  await app.register(problemPlugin);
  // the rate limit counts requests before the guard refuses any, so both share one identification
  const identify = identifier(deps.config.apiKeys);
  await app.register(rateLimitPlugin, {
    redis: deps.redis,
    identify,
    perTenantPerMinute: deps.config.rateLimitPerMinute,
    perAnonymousIpPerMinute: deps.config.rateLimitAnonymousPerMinute,
  });
  await app.register(authPlugin, { open: deps.config.apiKeys.length === 0, identify, adminTenants: deps.config.adminTenants });
  await app.register(openapiPlugin);
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(datasetRoutes, { prefix: '/v1/datasets' });
  await app.register(modelRoutes, { prefix: '/v1/models' });
  await app.register(jobRoutes, { prefix: '/v1/jobs' });
  await app.register(sweepRoutes, { prefix: '/v1/sweeps' });
  await app.register(dashboardPlugin);
  await app.register(queueBoardPlugin);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
