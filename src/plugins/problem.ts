import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import type { FieldError } from '../field-error.js';
import { DamagedInObjectStore, NotInObjectStore, ObjectStoreUnavailable } from '../artifacts/object-store.js';

export type { FieldError };

/** An error a route throws to answer with application/problem+json. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: FieldError[],
  ) {
    super(detail ?? title);
  }
}

/**
 * The one problem for input refused field by field: `errors` point at each field, and the
 * detail names the first (with its part, `body /epochs ...`, when `namePart`) and how many more.
 */
export function fieldsProblem(p: { status: number; slug: string; title: string; errors: FieldError[]; namePart?: boolean }): HttpProblem {
  const [first, ...rest] = p.errors;
  const detail = first
    ? `${p.namePart && first.in ? `${first.in} ` : ''}${first.pointer} ${first.detail}${rest.length > 0 ? ` (and ${rest.length} more)` : ''}`
    : p.title;
  return new HttpProblem(p.status, p.slug, p.title, detail, p.errors);
}

export const notFound = (what: string, id: string, pointer?: string) =>
  new HttpProblem(
    404,
    'not_found',
    `${what} not found`,
    `no ${what.toLowerCase()} has the id ${JSON.stringify(id)}`,
    pointer ? [{ pointer, in: 'path', detail: 'unknown id' }] : undefined,
  );

export interface ProblemFields {
  status: number;
  slug: string;
  title: string;
  detail?: string;
  errors?: FieldError[];
}

/** The application/problem+json body of a problem about the request to `instance`. */
export function problemBody(p: ProblemFields, instance: string) {
  return {
    type: `urn:tfjs-adapt:problem:${p.slug}`,
    title: p.title,
    status: p.status,
    ...(p.detail ? { detail: p.detail } : {}),
    instance,
    ...(p.errors ? { errors: p.errors } : {}),
  };
}

export function sendProblem(reply: FastifyReply, p: ProblemFields) {
  // a 408 leaves the rest of the body unread, so the connection cannot carry another request (RFC 9110, 15.5.9)
  if (p.status === 408) reply.header('connection', 'close');
  return reply.code(p.status).type('application/problem+json').send(problemBody(p, reply.request.url));
}

const PART: Record<string, FieldError['in']> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

/** ajv's errors as pointers to the offending field, e.g. /hyperparameters/optimizer/momentum */
function fieldErrors(err: FastifyError): FieldError[] {
  const where = PART[err.validationContext ?? 'body'] ?? 'body';
  return (err.validation ?? []).map((v) => {
    const params = v.params;
    let pointer = v.instancePath;
    let detail = v.message ?? 'is invalid';
    if (v.keyword === 'required') {
      pointer += `/${String(params.missingProperty)}`;
      detail = 'is required';
    } else if (v.keyword === 'additionalProperties') {
      pointer += `/${String(params.additionalProperty)}`;
      detail = 'is not a known property';
    } else if (v.keyword === 'enum' || v.keyword === 'const') {
      const allowed = (params.allowedValues as unknown[] | undefined) ?? [params.allowedValue];
      detail = `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
    }
    return { pointer: pointer || '/', in: where, detail };
  });
}

/** Union errors repeat one complaint per branch; keep one line per pointer and detail. */
function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.in}${e.pointer}${e.detail}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** One error handler for the whole API: everything leaves as application/problem+json. */
export const problemPlugin = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof HttpProblem) return sendProblem(reply, err);
    if (err instanceof ObjectStoreUnavailable) {
      req.log.warn({ err }, 'object store unavailable');
      return sendProblem(reply, {
        status: 503,
        slug: 'artifacts_unavailable',
        title: 'Object store unavailable',
        detail: 'the object store holding datasets and models (ARTIFACTS_URL) is not reachable; retry later',
      });
    }
    if (err instanceof DamagedInObjectStore || err instanceof NotInObjectStore) {
      // the store would give the same bytes to a retry: a conflict with the record's state, not an outage
      req.log.warn({ err }, 'artifact damaged in the object store');
      return sendProblem(reply, {
        status: 409,
        slug: 'artifact_damaged',
        title: 'Stored artifact damaged',
        detail: `${err.message}; the object store (ARTIFACTS_URL) would give the same bytes again, so retrying will not help`,
      });
    }
    if (err.validation) {
      const errors = dedupe(fieldErrors(err));
      if (errors.length === 0) return sendProblem(reply, { status: 400, slug: 'validation', title: 'The request is not valid', detail: err.message });
      return sendProblem(reply, fieldsProblem({ status: 400, slug: 'validation', title: 'The request is not valid', errors, namePart: true }));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendProblem(reply, { status, slug: (err.code ?? 'bad_request').toLowerCase(), title: err.message, detail: err.message });
    }
    req.log.error({ err }, 'unhandled error');
    return sendProblem(reply, {
      status: status >= 500 && status < 600 ? status : 500,
      slug: 'internal',
      title: 'Internal error',
      detail: 'the server failed to handle this request; it has been logged',
    });
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, { status: 404, slug: 'not_found', title: 'Not found', detail: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );
});
