import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { HttpProblem } from './problem.js';

/** The tenant that owns everything a request creates and the only one whose objects it sees. */
export const OPEN_TENANT = 'default';

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string;
  }
}

export interface ApiKey {
  tenant: string;
  token: string;
}

/** Parses API_KEYS: comma-separated `tenant:token` pairs. */
export function parseApiKeys(raw: string | undefined): ApiKey[] {
  if (!raw?.trim()) return [];
  return raw.split(',').map((pair, i) => {
    const at = pair.indexOf(':');
    const tenant = pair.slice(0, at).trim();
    const token = pair.slice(at + 1).trim();
    if (at <= 0 || !/^[A-Za-z0-9_-]{1,64}$/.test(tenant) || token.length < 16) {
      throw new Error(`API_KEYS entry ${i + 1} is not valid: expected tenant:token with a tenant of letters, digits, _ or - and a token of at least 16 characters`);
    }
    return { tenant, token };
  });
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * The path a request was routed by. The router decodes %-escapes before it matches, so the raw
 * URL of a request it routes to /v1/jobs may be `/%76%31/jobs`; guards test this path instead.
 * An unrouted request (a 404) keeps its raw URL.
 */
export const routedPath = (req: FastifyRequest) => req.routeOptions.url ?? req.url;

/**
 * Bearer tokens on every /v1 route when API_KEYS is set; the token names the tenant.
 * Without keys the service is open (one tenant) and server.ts only lets it listen on loopback.
 */
export const authPlugin = fp(async (app: FastifyInstance, opts: { keys: ApiKey[] }) => {
  app.decorateRequest('tenant', OPEN_TENANT);
  if (opts.keys.length === 0) return;
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    const path = routedPath(req);
    if (!path.startsWith('/v1/') && path !== '/v1' && !path.startsWith('/admin')) return;
    const header = req.headers.authorization ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    const key = token ? opts.keys.find((k) => same(k.token, token)) : undefined;
    if (!key) {
      reply.header('www-authenticate', 'Bearer');
      throw new HttpProblem(401, 'unauthorized', 'Authentication required', token ? 'the bearer token is not valid' : 'send Authorization: Bearer <token>');
    }
    req.tenant = key.tenant;
  });
});
