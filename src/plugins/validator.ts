/**
 * Request validators: Ajv, its code kept across processes by CompiledCode (Ajv's standalone output).
 *
 * Bodies are checked strictly: a wrong type is an error, never coerced, and an unknown
 * property is an error, never silently dropped. Query strings and headers are text, so
 * there numbers are coerced from strings.
 */
import { Ajv, type Options as AjvOptions } from 'ajv';
import addFormats from 'ajv-formats';
import standaloneCode from 'ajv/dist/standalone/index.js';
import type { FastifySchemaCompiler } from 'fastify';
import { JobSpec } from '../schemas/job.js';
import { sha256, type CompiledCode } from './compiled-code.js';

// code.optimize off: the job and sweep spec unions compile in half the CPU (~75 instead of ~140 ms
// each at every compile), for about 1 µs more per validated body (measured, Node 22)
// inlineRefs off: a $ref to a shared schema (below) calls its one compiled function instead of copying it in
const OPTIONS = {
  allErrors: true,
  useDefaults: true,
  strict: false,
  removeAdditional: false,
  code: { optimize: false, source: true },
  inlineRefs: false,
} as const;

/**
 * A sweep's `template` is a whole JobSpec: its validator refers to the one compiled for
 * POST /v1/jobs instead of holding a second copy of the union (~70 ms of CPU less at every
 * compile). Errors keep their pointers: Ajv reports a referenced schema's errors at the data's path.
 */
const SHARED = [JobSpec];
const SHARED_IDS = new Set(SHARED.map((s) => s.$id));
/** part of every validator's key (the code of a $ref to one is in the file): its hash, not its large text */
const SHARED_HASH = sha256(JSON.stringify(SHARED));

function ajv(opts: AjvOptions) {
  const a = new Ajv({ ...OPTIONS, ...opts });
  addFormats.default(a);
  for (const s of SHARED) a.addSchema(s);
  return a;
}

/** One pair per process, made at the first schema no stored code answers (Ajv keeps what it compiled by schema) */
let ajvs: { strict: Ajv; lenient: Ajv } | undefined;
const compilers = () => (ajvs ??= { strict: ajv({ coerceTypes: false }), lenient: ajv({ coerceTypes: true }) });

const sharing = new WeakMap<object, unknown>();

/** `schema` with every embedded (not top-level) shared schema replaced by a $ref to it; the same copy for the same schema, so Ajv's cache by schema still hits. */
function referencingShared(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || SHARED_IDS.has((schema as { $id?: string }).$id)) return schema;
  let copy = sharing.get(schema);
  if (copy === undefined) sharing.set(schema, (copy = replaceShared(schema)));
  return copy;
}

function replaceShared(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(replaceShared);
  if (schema === null || typeof schema !== 'object') return schema;
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id === 'string' && SHARED_IDS.has(id)) return { $ref: id };
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, replaceShared(v)]));
}

/** by mode and the schema object fastify hands over: no second walk and hash of the same one */
const bySchema = { strict: new WeakMap<object, unknown>(), lenient: new WeakMap<object, unknown>() };

export function validatorCompiler(code: CompiledCode): FastifySchemaCompiler<unknown> {
  return ({ schema, httpPart }) => {
    const mode = httpPart === 'body' ? 'strict' : 'lenient';
    let validate = bySchema[mode].get(schema as object);
    if (validate === undefined) {
      const served = referencingShared(schema) as object;
      const content = JSON.stringify({ validator: mode, options: OPTIONS, shared: SHARED_HASH, schema: served });
      validate = code.get(content, () => {
        const a = compilers()[mode];
        return standaloneCode.default(a, a.compile(served));
      });
      bySchema[mode].set(schema as object, validate);
    }
    return validate as ReturnType<FastifySchemaCompiler<unknown>>;
  };
}
