// loaded with require (why: eslint.config.js)
import Fastify = require('fastify');
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import './deps.js';
import type { AppDeps } from './deps.js';
import { authPlugin, identifier } from './plugins/auth.js';
import { dashboardPlugin } from './plugins/dashboard.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { openapiPlugin } from './plugins/openapi.js';
import { problemPlugin, sendProblem } from './plugins/problem.js';
import { queueBoardPlugin } from './plugins/queue-board.js';
import { CompiledCode } from './plugins/compiled-code.js';
import { serializerCompiler } from './plugins/serializer.js';
import { validatorCompiler } from './plugins/validator.js';
import { ConversionLeases } from './artifacts/ingest/conversion-leases.js';
import { PredictPool } from './predict/pool.js';
import { watchParsedBodies } from './routes/body-watch.js';
import datasetRoutes from './routes/datasets/index.js';
import healthRoutes from './routes/health.js';
import jobRoutes from './routes/jobs/index.js';
import metricsRoutes from './routes/metrics.js';
import modelRoutes from './routes/models/index.js';
import sweepRoutes from './routes/sweeps/index.js';

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

  const code = new CompiledCode(deps.config.compiledCodeDir);
  app.setValidatorCompiler(validatorCompiler(code));
  app.setSerializerCompiler(serializerCompiler(code));

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
  // before any route: every body fastify parses is bounded in time as the routes' own forms are
  app.addHook('preParsing', watchParsedBodies(deps.config));
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
