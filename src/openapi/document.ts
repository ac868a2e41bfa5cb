import { isApiPath } from '../plugins/auth.js';
import { Problem } from '../schemas/common.js';
import { EXAMPLES, ID_EXAMPLES } from './examples.js';
import { OPERATION_IDS } from './operation-ids.js';

const STATUS_TEXT: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted: the work goes on in the background',
  204: 'Done; no body',
  400: 'The request is not valid; `errors[].pointer` names each offending field',
  401: 'Authentication required: send `Authorization: Bearer <API key>`',
  403: 'Not allowed for this API key',
  404: 'No such resource (or one that belongs to another tenant)',
  409: 'Conflicts with the current state of the resource',
  413: 'The upload is too large',
  415: 'Unsupported content type',
  429: 'Too many requests or unfinished jobs for this tenant; retry after `Retry-After` seconds',
  503: 'A service this one depends on (Redis, the store) is unavailable',
};

/** The parts of an OpenAPI 3 document this file reads or writes. */
type Schema = { $ref?: string; type?: string; format?: string; required?: unknown; properties?: Record<string, unknown> };
type Media = { schema?: Schema; example?: unknown };
type Response = { description?: string; content?: Record<string, Media> };
type Parameter = { in: string; name: string; schema?: Record<string, unknown>; example?: unknown };
type Operation = {
  operationId?: string;
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, Media> };
  responses: Record<string, Response>;
  security?: Array<Record<string, string[]>>;
};
type PathItem = Record<string, unknown>;
type Doc = {
  paths?: Record<string, PathItem>;
  components?: { schemas?: Record<string, Schema>; securitySchemes?: Record<string, unknown> };
  servers?: unknown[];
};

const BEARER = 'bearerAuth';
const SECURITY_SCHEME = {
  type: 'http',
  scheme: 'bearer',
  description:
    'An API key: the token of a `tenant:token` pair of API_KEYS, as `Authorization: Bearer <token>`; it names the tenant whose objects a request ' +
    'sees. Required on every /v1 route when API_KEYS is set; without keys the service is open and listens on loopback only.',
};
const SERVERS = [{ url: '/', description: 'this service: paths are relative to the address this document was fetched from' }];

/** A problem+json answer, for the statuses every route of a kind can give (the Problem schema without TypeBox's symbols). */
const problemResponse = (code: string): Response => ({
  description: STATUS_TEXT[code],
  content: { 'application/problem+json': { schema: JSON.parse(JSON.stringify(Problem)) as Schema } },
});

/** Whether fastify checks some input of the operation against a schema (and so can answer 400). */
function validatesInput(op: Operation): boolean {
  if (op.requestBody) return true;
  return (op.parameters ?? []).some(
    (p) => p.in !== 'path' || ['pattern', 'maxLength', 'minLength', 'enum', 'minimum', 'maximum', 'format'].some((k) => p.schema?.[k] !== undefined),
  );
}

/**
 * The answers that the plugins, not the route, give: a 400 when input fails its schema, a 413
 * and 415 for a body too large or of another content type, and on the API paths the 401 of
 * auth.ts and the 429 of rate-limit.ts. Declared where missing, with the security they imply.
 */
function addPluginAnswers(path: string, op: Operation): void {
  const add = (code: string) => (op.responses[code] ??= problemResponse(code));
  if (validatesInput(op)) add('400');
  if (op.requestBody) {
    add('413');
    add('415');
  }
  if (isApiPath(path)) {
    op.security = [{ [BEARER]: [] }];
    add('401');
    add('429');
  } else {
    op.security = [];
  }
  op.responses = Object.fromEntries(Object.entries(op.responses).sort(([a], [b]) => a.localeCompare(b)));
}

/** fastify documents a prefix's "/" route as "/v1/jobs/"; the route answers at "/v1/jobs" too, the path clients use. */
function withoutTrailingSlashes(doc: Doc): void {
  if (!doc.paths) return;
  doc.paths = Object.fromEntries(
    Object.entries(doc.paths).reduce<Array<[string, PathItem]>>((out, [path, item]) => {
      const bare = path.length > 1 ? path.replace(/\/+$/, '') : path;
      const same = out.find(([p]) => p === bare);
      if (same) Object.assign(same[1], item);
      else out.push([bare, item]);
      return out;
    }, []),
  );
}

/**
 * Whether a response schema is problem details (inline or a $ref: fastify-swagger does either),
 * recognised by shape: the readiness 503, say, is JSON but no problem.
 */
function isProblem(doc: Doc, schema: Schema | undefined): boolean {
  const ref = typeof schema?.$ref === 'string' ? /^#\/components\/schemas\/(.+)$/.exec(schema.$ref)?.[1] : undefined;
  const target = ref ? doc.components?.schemas?.[ref] : schema;
  const required: unknown[] = Array.isArray(target?.required) ? target.required : [];
  return ['type', 'title', 'status'].every((k) => required.includes(k) && target?.properties?.[k] !== undefined);
}

/** "/v1/jobs/" and "/v1/jobs" are one key: fastify documents a prefix's "/" route with the slash. */
export const operationKey = (method: string, path: string) => `${method.toUpperCase()} ${path.length > 1 ? path.replace(/\/+$/, '') : path}`;

/**
 * Finishes the generated document: paths without trailing slashes, a server, the bearer scheme,
 * an operationId for each operation (operation-ids.ts), the answers plugins give (above),
 * examples for every operation that has some (examples.ts),
 * a description for each response instead of fastify-swagger's "Default Response", error
 * bodies under their real content type application/problem+json (binary ones under
 * application/octet-stream), and examples for path ids.
 * Runs once, when the document is first asked for.
 */
export function completeDocument<T extends object>(document: T): T {
  const doc = document as Doc;
  withoutTrailingSlashes(doc);
  doc.servers = SERVERS;
  doc.components = { ...doc.components, securitySchemes: { ...doc.components?.securitySchemes, [BEARER]: SECURITY_SCHEME } };
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, value] of Object.entries(item)) {
      if (typeof value !== 'object' || !value || !('responses' in value)) continue;
      const op = value as Operation;
      const key = operationKey(method, path);
      const examples = EXAMPLES[key];
      if (OPERATION_IDS[key]) op.operationId ??= OPERATION_IDS[key];
      addPluginAnswers(path, op);
      for (const param of op.parameters ?? []) {
        const resource = /^\/v1\/([a-z]+)\//.exec(path)?.[1];
        if (param.in === 'path' && param.name === 'id' && resource && ID_EXAMPLES[resource]) param.example ??= ID_EXAMPLES[resource];
      }
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        const example = examples?.request?.[type];
        if (example !== undefined) media.example ??= example;
      }
      for (const [code, response] of Object.entries(op.responses)) {
        if (response.description === 'Default Response' && STATUS_TEXT[code]) response.description = STATUS_TEXT[code];
        const content = response.content;
        if (!content) continue;
        // a route declares a binary answer as a string schema; the body is bytes, not JSON
        const json = content['application/json'];
        if (json?.schema?.type === 'string' && json.schema.format === 'binary' && !content['application/octet-stream']) {
          content['application/octet-stream'] = json;
          delete content['application/json'];
        }
        if (Number(code) >= 400 && content['application/json'] && !content['application/problem+json'] && isProblem(doc, content['application/json'].schema)) {
          content['application/problem+json'] = content['application/json'];
          delete content['application/json'];
        }
        const example = examples?.responses[code];
        const first = Object.values(content)[0];
        if (example !== undefined && first) first.example ??= example;
      }
    }
  }
  return document;
}
