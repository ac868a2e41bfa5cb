import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import { serviceMetrics } from '../metrics/service-metrics.js';

const PROBLEM_PREFIX = 'urn:tfjs-adapt:problem:';

/** The slug of a problem+json body, or `unknown` when the body is not one. */
function problemCode(payload: unknown): string {
  if (typeof payload !== 'string') return 'unknown';
  try {
    const type = (JSON.parse(payload) as { type?: unknown }).type;
    return typeof type === 'string' && type.startsWith(PROBLEM_PREFIX) ? type.slice(PROBLEM_PREFIX.length) : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * GET /metrics in the Prometheus text format. Registered without encapsulation (fastify-plugin)
 * so its onSend hook sees the error answers of every route, including 404s of unknown paths.
 */
const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const metrics = serviceMetrics(app.deps, (err) => app.log.warn({ err }, 'metrics: the queue did not answer'));

  app.addHook('onSend', async (_req, reply, payload) => {
    if (reply.statusCode >= 400) metrics.httpError(reply.statusCode, problemCode(payload));
    return payload;
  });

  app.get('/metrics', {
    schema: {
      tags: ['service'],
      summary: 'Prometheus metrics',
      description:
        'Prometheus text exposition format. Job figures (`tfjs_adapt_jobs`, `tfjs_adapt_job_duration_seconds`, ' +
        '`tfjs_adapt_training_samples_per_second`, `tfjs_adapt_job_errors`) are read from the store at scrape time, so every ' +
        'API replica reports the same totals; queue figures come from Redis (`tfjs_adapt_queue_up` is 0 when it did not ' +
        'answer); `tfjs_adapt_http_errors_total` and the `process_*`/`nodejs_*` metrics are per process.',
      response: {
        200: {
          description: 'metrics in the Prometheus text format, version 0.0.4',
          content: { 'text/plain': { schema: { type: 'string' } } },
        },
      },
    },
    handler: async (_req, reply) => {
      const text = await metrics.scrape();
      return reply.type(metrics.registry.contentType).send(text);
    },
  });
};

export default fp(metricsRoutes, { name: 'metrics-routes' });
