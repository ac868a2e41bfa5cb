import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { guardedPath, type Identify } from './auth.js';
import { HttpProblem } from './problem.js';

const WINDOW_MS = 60_000;
const TENANT = 'tenant:';

/**
 * @fastify/rate-limit on every guarded path, counted in Redis so every API replica shares the
 * window: per tenant for requests with valid credentials, per client IP for the rest (the 401s
 * included, so guessing tokens or flooding the auth check is bounded too). It runs before the
 * auth guard, which is why it identifies the caller itself (memoised: the guard asks again for
 * free). When Redis cannot answer, requests pass (skipOnError): the store-backed routes still
 * work then, and refusing them would turn a queue outage into a full one. While the client knows
 * it is disconnected the count is not even tried: ioredis would hold the command in its offline
 * queue until its reconnect attempts ran out (seconds each), and every request would wait that long.
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance, opts: { redis: Redis; identify: Identify; perTenantPerMinute: number; perAnonymousIpPerMinute: number }) => {
    const limitOf = (key: string) => (key.startsWith(TENANT) ? opts.perTenantPerMinute : opts.perAnonymousIpPerMinute);
    await app.register(fastifyRateLimit, {
      global: false,
      redis: opts.redis,
      nameSpace: 'tfjs-adapt:rate:',
      skipOnError: true,
      timeWindow: WINDOW_MS,
      enableDraftSpec: true,
      keyGenerator: (req) => {
        const tenant = opts.identify(req);
        return tenant === undefined ? `ip:${req.ip}` : `${TENANT}${tenant}`;
      },
      max: (_req, key) => limitOf(key),
      // 0 means unlimited
      allowList: (_req, key) => limitOf(key) === 0,
      errorResponseBuilder: (req, ctx) => {
        const tenant = opts.identify(req);
        const who = tenant === undefined ? `requests without valid credentials from ${req.ip} made` : `tenant ${tenant} made`;
        return new HttpProblem(
          429,
          'rate_limited',
          'Too many requests',
          `${who} more than ${ctx.max} requests in a minute; retry after ${Math.ceil(ctx.ttl / 1000)} s`,
        );
      },
    });
    const limit = app.rateLimit();
    // the first requests are counted too: wait once for the connection (failing, they pass uncounted as in an outage)
    await opts.redis.ping().catch(() => undefined);
    app.addHook('onRequest', async (req, reply) => {
      if (guardedPath(req) && opts.redis.status === 'ready') await limit.call(app, req, reply);
    });
  },
);
