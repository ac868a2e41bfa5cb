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

/** The API proper: the paths that take a bearer token when API_KEYS is set and count toward the rate limit (and are documented so). */
export const isApiPath = (path: string) => path.startsWith('/v1/') || path === '/v1';

/** Admin pages show every tenant's work; a browser prompts for Basic credentials when it sees this challenge. */
const ADMIN_CHALLENGE = 'Basic realm="tfjs-adapt admin"';

/** The user and password of `Authorization: Basic <base64 user:password>`, or undefined when it is not one. */
function basicCredentials(header: string): { user: string; password: string } | undefined {
  const encoded = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header)?.[1];
  if (!encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Bearer tokens on every /v1 route when API_KEYS is set; the token names the tenant.
 * /admin takes the same bearer tokens, or HTTP Basic (user: the tenant, password: its token)
 * because a browser opening a page cannot send a bearer header, and only for ADMIN_TENANTS.
 * Without keys the service is open (one tenant) and server.ts only lets it listen on loopback.
 */
export const authPlugin = fp(async (app: FastifyInstance, opts: { keys: ApiKey[]; adminTenants: string[] }) => {
  app.decorateRequest('tenant', OPEN_TENANT);
  if (opts.keys.length === 0) return;
  const admins = new Set(opts.adminTenants);
  const keyOf = (token: string) => opts.keys.find((k) => same(k.token, token));
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    const path = routedPath(req);
    const admin = path.startsWith('/admin');
    if (!admin && !isApiPath(path)) return;
    const header = req.headers.authorization ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    const basic = admin && !token ? basicCredentials(header) : undefined;
    const key = token ? keyOf(token) : basic ? keyOf(basic.password) : undefined;
    if (!key || (basic && key.tenant !== basic.user)) {
      reply.header('www-authenticate', admin ? ADMIN_CHALLENGE : 'Bearer');
      const expected = admin ? 'send HTTP Basic credentials (user: your tenant, password: its API key) or Authorization: Bearer <token>' : 'send Authorization: Bearer <token>';
      throw new HttpProblem(401, 'unauthorized', 'Authentication required', header ? `the credentials in the Authorization header are not valid; ${expected}` : expected);
    }
    if (admin && !admins.has(key.tenant)) {
      throw new HttpProblem(403, 'forbidden', 'Not an admin tenant', `tenant ${JSON.stringify(key.tenant)} is not in ADMIN_TENANTS: /admin shows every tenant's jobs, so only the tenants listed there may open it`);
    }
    req.tenant = key.tenant;
  });
});
