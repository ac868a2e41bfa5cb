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
 * The OpenAPI document still describes it in full: only the serializer's copy is changed.
 */
import build from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';

/** `$id`s of schemas whose values are written verbatim (see above) */
const VERBATIM = new Set(['JobSpec']);

/** A copy of `schema` with every subschema whose `$id` is in VERBATIM replaced by `{}` (any JSON). */
function withVerbatimSubtrees(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withVerbatimSubtrees);
  if (schema === null || typeof schema !== 'object') return schema;
  const s = schema as Record<string, unknown>;
  if (typeof s.$id === 'string' && VERBATIM.has(s.$id)) return { description: s.description ?? s.$id };
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, withVerbatimSubtrees(v)]));
}

export const serializerCompiler: FastifySerializerCompiler<unknown> = ({ schema }) => build(withVerbatimSubtrees(schema) as Parameters<typeof build>[0]);
