/**
 * Reply serializers: fastify's fast-json-stringify, except that subtrees the store keeps as
 * they were validated on the way in are written with JSON.stringify instead of by schema.
 *
 * Why (measured): fast-json-stringify picks a branch of each `anyOf` by running Ajv on the data,
 * and compiles those Ajv validators per serializer on its first use. A job's `spec` is a union
 * of job types whose `method` is a union of methods: compiling it took ~300 ms of CPU for every
 * route and status that answers a job, paid by the first reply of each (a stall an attacker can
 * set off route by route, which every other request waits behind), and validating it again cost
 * time on every reply. The spec was checked against the same schema when the job was created,
 * and the schema allows no additional properties, so writing it verbatim emits the same fields.
 * A sweep's spec (its template a JobSpec, its parameters a union) is kept the same way. The
 * OpenAPI document still describes it in full: only the serializer's copy is changed.
 *
 * Serializers are shared by schema content. Routes repeat the same answers (every route's
 * problem+json 4xx, the job and sweep bodies under several routes and statuses): 163 compiles
 * of 22 distinct schemas, a third of the app's start-up CPU (measured), for functions that
 * depend on nothing but the schema (this compiler reads nothing else of the route). Their code
 * is fast-json-stringify's standalone output, kept across processes by CompiledCode.
 */
// loaded with require (why: eslint.config.js)
import build = require('fast-json-stringify');
import type { AnySchema } from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';
import type { CompiledCode } from './compiled-code.js';

/** `$id`s of schemas whose values are written verbatim (see above) */
const VERBATIM = new Set(['JobSpec', 'SweepSpec']);

/** A copy of `schema` with every subschema whose `$id` is in VERBATIM replaced by `{}` (any JSON). */
function withVerbatimSubtrees(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withVerbatimSubtrees);
  if (schema === null || typeof schema !== 'object') return schema;
  const s = schema as Record<string, unknown>;
  if (typeof s.$id === 'string' && VERBATIM.has(s.$id)) return { description: s.description ?? s.$id };
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, withVerbatimSubtrees(v)]));
}

/** by the schema object fastify hands over (routes share their answers' schema objects): no second walk and hash of the same one */
const bySchema = new WeakMap<object, unknown>();

export function serializerCompiler(code: CompiledCode): FastifySerializerCompiler<unknown> {
  return ({ schema }) => {
    let serialize = bySchema.get(schema as object);
    if (serialize === undefined) {
      const served = withVerbatimSubtrees(schema);
      serialize = code.get(JSON.stringify({ serializer: served }), () => build(served as AnySchema, { mode: 'standalone', inlineValidators: true }));
      bySchema.set(schema as object, serialize);
    }
    return serialize as ReturnType<FastifySerializerCompiler<unknown>>;
  };
}
