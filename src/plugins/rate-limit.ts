import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { isApiPath, routedPath } from './auth.js';
import { HttpProblem } from './problem.js';

/**
 * A fixed one-minute window per tenant, counted in Redis so every API replica shares it.
 * When Redis cannot answer, requests pass: the store-backed routes still work then, and
 * refusing them would turn a queue outage into a full one.
 */
export const rateLimitPlugin = fp(async (app: FastifyInstance, opts: { redis: Redis; perMinute: number }) => {
  if (opts.perMinute <= 0) return;
  app.addHook('onRequest', async (req, reply) => {
    if (!isApiPath(routedPath(req))) return;
    const minute = Math.floor(Date.now() / 60_000);
    const key = `tfjs-adapt:rate:${req.tenant}:${minute}`;
    let count: number;
    try {
      const [[, n]] = (await opts.redis.multi().incr(key).expire(key, 61).exec()) as [[unknown, number]];
      count = n;
    } catch {
      return;
    }
    reply.header('ratelimit-limit', opts.perMinute).header('ratelimit-remaining', Math.max(0, opts.perMinute - count));
    if (count > opts.perMinute) {
      const retryAfter = 60 - Math.floor((Date.now() / 1000) % 60);
      reply.header('retry-after', retryAfter);
      throw new HttpProblem(429, 'rate_limited', 'Too many requests', `tenant ${req.tenant} made more than ${opts.perMinute} requests this minute; retry after ${retryAfter} s`);
    }
  });
});
