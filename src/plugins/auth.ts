import { createHash, timingSafeEqual } from 'node:crypto';
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
      throw new Error(
        `API_KEYS entry ${i + 1} is not valid: expected tenant:token with a tenant of letters, digits, _ or - and a token of at least 16 characters`,
      );
    }
    return { tenant, token };
  });
}

/**
 * The path a request was routed by. The router decodes %-escapes before it matches, so the raw
 * URL of a request it routes to /v1/jobs may be `/%76%31/jobs`; guards test this path instead.
 * An unrouted request (a 404) keeps its raw URL.
 */
export const routedPath = (req: FastifyRequest) => req.routeOptions.url ?? req.url;

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
 * Whether a request needs credentials when API_KEYS is set: the API, the admin pages, and
 * /metrics (its figures cover every tenant). /health, /ready, the docs and the dashboard's
 * static files stay open for probes and browsers.
 */
export function guardedPath(req: FastifyRequest): boolean {
  const path = routedPath(req);
  return isApiPath(path) || path.startsWith('/admin') || path === '/metrics';
}

/** The tenant-scoped API: what the OpenAPI document marks as taking bearer tokens, and what rate limits count per tenant. */
export const isApiPath = (path: string) => path === '/v1' || path.startsWith('/v1/');

/** The tenant whose credentials a request carries, or undefined when it carries none that are valid. */
export type Identify = (req: FastifyRequest) => string | undefined;

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Who sent a request, by its Authorization header. A token is compared with every key, each
 * side hashed to 32 bytes first, so the time taken says neither which key matched nor how
 * long a key is. Each request is identified once: the rate limit and the guard both ask.
 * Without keys every request is the one open tenant.
 */
export function identifier(keys: ApiKey[]): Identify {
  if (keys.length === 0) return () => OPEN_TENANT;
  const digests = keys.map((k) => ({ tenant: k.tenant, digest: digest(k.token) }));
  const tenantOf = (token: string) => {
    const presented = digest(token);
    let tenant: string | undefined;
    for (const k of digests) {
      const match = timingSafeEqual(k.digest, presented);
      tenant ??= match ? k.tenant : undefined;
    }
    return tenant;
  };
  const known = new WeakMap<FastifyRequest, string | null>();
  return (req) => {
    const seen = known.get(req);
    if (seen !== undefined) return seen ?? undefined;
    const header = req.headers.authorization ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    const basic = !token && routedPath(req).startsWith('/admin') ? basicCredentials(header) : undefined;
    const tenant = token ? tenantOf(token) : basic && tenantOf(basic.password) === basic.user ? basic.user : undefined;
    known.set(req, tenant ?? null);
    return tenant;
  };
}

/**
 * Bearer tokens on every guarded path (see guardedPath) when API_KEYS is set; the token names
 * the tenant. /admin takes the same bearer tokens, or HTTP Basic (user: the tenant, password:
 * its token) because a browser opening a page cannot send a bearer header, and only for
 * ADMIN_TENANTS. Without keys the service is open (one tenant) and server.ts only lets it
 * listen on loopback.
 */
export const authPlugin = fp(async (app: FastifyInstance, opts: { open: boolean; identify: Identify; adminTenants: string[] }) => {
  app.decorateRequest('tenant', OPEN_TENANT);
  if (opts.open) return;
  const admins = new Set(opts.adminTenants);
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    if (!guardedPath(req)) return;
    const admin = routedPath(req).startsWith('/admin');
    const tenant = opts.identify(req);
    if (tenant === undefined) {
      const header = req.headers.authorization;
      reply.header('www-authenticate', admin ? ADMIN_CHALLENGE : 'Bearer');
      const expected = admin
        ? 'send HTTP Basic credentials (user: your tenant, password: its API key) or Authorization: Bearer <token>'
        : 'send Authorization: Bearer <token>';
      throw new HttpProblem(
        401,
        'unauthorized',
        'Authentication required',
        header ? `the credentials in the Authorization header are not valid; ${expected}` : expected,
      );
    }
    if (admin && !admins.has(tenant)) {
      throw new HttpProblem(
        403,
        'forbidden',
        'Not an admin tenant',
        `tenant ${JSON.stringify(tenant)} is not in ADMIN_TENANTS: /admin shows every tenant's jobs, so only the tenants listed there may open it`,
      );
    }
    req.tenant = tenant;
  });
});
