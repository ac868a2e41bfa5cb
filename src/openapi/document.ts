import { EXAMPLES, ID_EXAMPLES } from './examples.js';

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

type Doc = { paths?: Record<string, Record<string, any>>; components?: { schemas?: Record<string, any> } };

/**
 * Whether a response schema is problem details (inline or a $ref: fastify-swagger does either),
 * recognised by shape: the readiness 503, say, is JSON but no problem.
 */
function isProblem(doc: Doc, schema: any): boolean {
  const ref = typeof schema?.$ref === 'string' ? /^#\/components\/schemas\/(.+)$/.exec(schema.$ref)?.[1] : undefined;
  const target = ref ? doc.components?.schemas?.[ref] : schema;
  const required: unknown[] = Array.isArray(target?.required) ? target.required : [];
  return ['type', 'title', 'status'].every((k) => required.includes(k) && target.properties?.[k]);
}

/** "/v1/jobs/" and "/v1/jobs" are one key: fastify documents a prefix's "/" route with the slash. */
export const operationKey = (method: string, path: string) => `${method.toUpperCase()} ${path.length > 1 ? path.replace(/\/+$/, '') : path}`;

/**
 * Finishes the generated document: examples for every operation that has some (examples.ts),
 * a description for each response instead of fastify-swagger's "Default Response", error
 * bodies under their real content type application/problem+json (binary ones under
 * application/octet-stream), and examples for path ids.
 * Runs once, when the document is first asked for.
 */
export function completeDocument<T extends object>(document: T): T {
  const doc = document as Doc;
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (typeof op !== 'object' || !op || !('responses' in op)) continue;
      const examples = EXAMPLES[operationKey(method, path)];
      for (const param of op.parameters ?? []) {
        const resource = /^\/v1\/([a-z]+)\//.exec(path)?.[1];
        if (param.in === 'path' && param.name === 'id' && resource && ID_EXAMPLES[resource]) param.example ??= ID_EXAMPLES[resource];
      }
      for (const [type, media] of Object.entries<any>(op.requestBody?.content ?? {})) {
        const example = examples?.request?.[type];
        if (example !== undefined) media.example ??= example;
      }
      for (const [code, response] of Object.entries<any>(op.responses ?? {})) {
        if (response.description === 'Default Response' && STATUS_TEXT[code]) response.description = STATUS_TEXT[code];
        const content = response.content as Record<string, any> | undefined;
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
