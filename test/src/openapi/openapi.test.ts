import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { PROJECT_ROOT } from '../../../src/paths.js';
import { startApi, type Api } from '../../helpers/api.js';
import { OPERATION_IDS } from '../../../src/openapi/operation-ids.js';

let h: Api;
let doc: any;
let dir: string;

before(async () => {
  h = await startApi();
  doc = (await h.request('GET', '/openapi.json')).body;
  dir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-openapi-'));
});
after(async () => {
  await h?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
function operations(): Array<{ where: string; path: string; op: any }> {
  return Object.entries<any>(doc.paths).flatMap(([path, item]) =>
    Object.entries<any>(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([m, op]) => ({ where: `${m.toUpperCase()} ${path}`, path, op })),
  );
}

test('every operation is tagged with a declared tag, summarised, described, and has examples of its body and its success answer', () => {
  const declared = new Set(doc.tags.map((t: any) => t.name));
  const missing: string[] = [];
  for (const { where, op } of operations()) {
    if (!op.tags?.length || !op.tags.every((t: string) => declared.has(t)))
      missing.push(`${where}: tags ${JSON.stringify(op.tags)} (declared: ${[...declared].join(', ')})`);
    if (!op.summary) missing.push(`${where}: no summary`);
    if (!op.description || op.description.length < 20) missing.push(`${where}: no description`);
    for (const [type, media] of Object.entries<any>(op.requestBody?.content ?? {})) {
      if (media.example === undefined && media.examples === undefined) missing.push(`${where}: no example of the ${type} request body`);
    }
    const success = Object.entries<any>(op.responses).filter(([code, r]) => /^2/.test(code) && r.content);
    for (const [code, r] of success) {
      if (Object.values<any>(r.content).every((m) => m.example === undefined && m.examples === undefined))
        missing.push(`${where}: no example of the ${code} answer`);
    }
    for (const [code, r] of Object.entries<any>(op.responses)) {
      if (r.description === 'Default Response') missing.push(`${where}: ${code} has no description`);
    }
    for (const p of op.parameters ?? []) {
      if (p.in === 'path' && p.example === undefined) missing.push(`${where}: no example of path parameter ${p.name}`);
    }
  }
  assert.deepEqual(missing, [], 'add what is missing to the route schema (summary, description, tags) or to src/openapi/examples.ts');
});

test('every operation has its own operationId, declares its security, and no path ends in a slash', () => {
  assert.ok(doc.servers?.length >= 1, 'servers');
  assert.deepEqual(doc.components.securitySchemes.bearerAuth, { ...doc.components.securitySchemes.bearerAuth, type: 'http', scheme: 'bearer' });
  const wrong: string[] = [];
  const ids = new Map<string, string>();
  for (const { where, path, op } of operations()) {
    if (path.length > 1 && path.endsWith('/')) wrong.push(`${where}: trailing slash`);
    if (!op.operationId) wrong.push(`${where}: no operationId (add it to src/openapi/operation-ids.ts)`);
    else if (ids.has(op.operationId)) wrong.push(`${where}: operationId ${op.operationId} is also ${ids.get(op.operationId)}'s`);
    ids.set(op.operationId, where);
    const secured = path.startsWith('/v1/');
    if (JSON.stringify(op.security) !== JSON.stringify(secured ? [{ bearerAuth: [] }] : [])) wrong.push(`${where}: security ${JSON.stringify(op.security)}`);
    if (secured && !(op.responses[401] && op.responses[429])) wrong.push(`${where}: the 401 of API keys and the 429 of the rate limit are not declared`);
  }
  assert.deepEqual(wrong, []);
  assert.deepEqual([...ids.keys()].sort(), Object.values(OPERATION_IDS).sort(), 'operation-ids.ts names operations that do not exist');
});

test('the slashless list paths the document names answer, as the slashed ones still do', async () => {
  for (const path of ['/v1/jobs', '/v1/jobs/', '/v1/models', '/v1/models/', '/v1/datasets', '/v1/datasets/']) {
    assert.equal((await h.request('GET', path)).status, 200, path);
  }
});

test('error answers are documented as application/problem+json', () => {
  const wrong = operations().flatMap(({ where, op }) =>
    Object.entries<any>(op.responses)
      .filter(([code, r]) => Number(code) >= 400 && r.content && !r.content['application/problem+json'] && !(where === 'GET /ready' && code === '503'))
      .map(([code, r]) => `${where} ${code}: ${Object.keys(r.content).join(', ')}`),
  );
  assert.deepEqual(wrong, []);
});

/** Type-checks `files` (name -> source) in `dir` beside the generated api.d.ts; returns the diagnostics as text. */
function typecheck(files: Record<string, string>): string[] {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const program = ts.createProgram(
    Object.keys(files).map((f) => join(dir, f)),
    {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
      types: [],
      typeRoots: [join(PROJECT_ROOT, 'node_modules', '@types')],
      skipLibCheck: true,
    },
  );
  return ts
    .getPreEmitDiagnostics(program)
    .map(
      (d) =>
        `${d.file ? `${d.file.fileName.slice(dir.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
    );
}

/** A small typed client over the generated `paths`: the path and method pick the body and answer types. */
const CLIENT = `
import type { paths } from './api.js';

type Method = 'get' | 'post' | 'delete';
type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type JsonOf<T> = T extends { content: { 'application/json': infer B } } ? B : never;
export type Answer<P extends keyof paths, M extends Method, S extends number> = Op<P, M> extends { responses: infer R } ? (S extends keyof R ? JsonOf<R[S]> : never) : never;
export type Body<P extends keyof paths, M extends Method> = Op<P, M> extends { requestBody?: infer B } ? JsonOf<NonNullable<B>> : never;

export async function call<P extends keyof paths, M extends Method, S extends number>(
  base: string, method: M, path: P, expect: S, params: Record<string, string> = {}, body?: Body<P, M>,
): Promise<Answer<P, M, S>> {
  const url = base + String(path).replace(/\\{(\\w+)\\}/g, (_, k: string) => encodeURIComponent(params[k] ?? ''));
  const res = await fetch(url, { method: method.toUpperCase(), headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status !== expect) throw new Error(method + ' ' + String(path) + ' answered ' + res.status + ', expected ' + expect + ': ' + (await res.text()));
  return (await res.json()) as Answer<P, M, S>;
}
`;

const PROGRAM = `
import type { components, paths } from './api.js';
import { call, type Answer, type Body } from './client.js';

type JobSpec = Body<'/v1/jobs', 'post'>;
type Job = Answer<'/v1/jobs/{id}', 'get', 200>;

export async function run(base: string): Promise<{ store: string; datasetClasses: number; jobStatus: Job['status']; pointer: string; listed: number }> {
  const health = await call(base, 'get', '/health', 200);
  const ds = await call(base, 'post', '/v1/datasets', 201, {}, { name: 'typed-mnist', source: { builtin: 'mnist', split: 'train', limit: 100 } });
  const read = await call(base, 'get', '/v1/datasets/{id}', 200, { id: ds.id });
  const spec: JobSpec = {
    type: 'train',
    model: { architecture: { kind: 'mlp', hidden: [16], activation: 'relu' } },
    data: { train: read.id },
    hyperparameters: { epochs: 1, batchSize: 32, seed: 1, optimizer: { name: 'sgd', learningRate: 0.01, momentum: 0.9 } },
  };
  const job = await call(base, 'post', '/v1/jobs', 202, {}, spec);
  const status: 'queued' | 'running' | 'paused' | 'succeeded' | 'failed' | 'cancelled' = job.status;
  const again: Job = await call(base, 'get', '/v1/jobs/{id}', 200, { id: job.id });
  const modelId: string | undefined = again.result?.modelId;
  void modelId;
  const list = await call(base, 'get', '/v1/jobs', 200);
  const res = await fetch(base + '/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...spec, hyperparameters: { ...spec.hyperparameters, epochs: 0 } }) });
  const problem = (await res.json()) as components['schemas'] extends never ? never : NonNullable<paths['/v1/jobs']['post']['responses'][400]['content']['application/problem+json']>;
  return { store: health.store, datasetClasses: read.numClasses ?? 0, jobStatus: status, pointer: problem.errors?.[0]?.pointer ?? '', listed: list.data.length };
}
`;

test('a typed client generated from /openapi.json with openapi-typescript type-checks a program, and catches wrong ones', async () => {
  const api = astToString(await openapiTS(doc));
  assert.match(api, /export interface paths/);
  // one program for the right files and the wrong one (the libs are parsed once); wrong.ts imports nothing the others need
  const diagnostics = typecheck({
    'api.d.ts': api,
    'client.ts': CLIENT,
    'program.ts': PROGRAM,
    // the same checker rejects programs the API would reject: the types carry the schema
    'wrong.ts': `
import type { paths } from './api.js';
import { call, type Body } from './client.js';
type JobSpec = Body<'/v1/jobs', 'post'>;
export const badEpochs: JobSpec = { type: 'train', model: {}, data: { train: 'ds_x' }, hyperparameters: { epochs: '10', batchSize: 64, optimizer: { name: 'sgd', learningRate: 0.1 } } };
export const badOptimizer: JobSpec = { type: 'train', model: {}, data: { train: 'ds_x' }, hyperparameters: { epochs: 1, batchSize: 64, optimizer: { name: 'no-such-optimizer', learningRate: 0.1 } } };
export const noSuchRoute = (base: string) => call(base, 'get', '/v1/nothing-here', 200);
export async function badStatus(base: string) { const j = await call(base, 'get', '/v1/jobs/{id}', 200, { id: 'x' }); const s: 'done' = j.status; return s; }
`,
  });
  assert.deepEqual(
    diagnostics.filter((d) => !d.startsWith('wrong.ts:')),
    [],
  );
  const lines = diagnostics.filter((d) => d.startsWith('wrong.ts:')).join('\n');
  assert.match(lines, /wrong\.ts:5: .*Type 'string' is not assignable to type 'number'/, lines);
  assert.match(lines, /wrong\.ts:6: .*"no-such-optimizer"/, lines);
  assert.match(lines, /wrong\.ts:7: .*'"\/v1\/nothing-here"' is not assignable to parameter of type 'keyof paths'/, lines);
  assert.match(lines, /wrong\.ts:8: .*not assignable to type '"done"'/, lines);
});

test('the typed program runs against the service and gets what its types promise', async () => {
  const out = ts.transpileModule(PROGRAM.replace("from './client.js'", "from './client.mjs'"), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
  });
  const client = ts.transpileModule(CLIENT, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } });
  writeFileSync(join(dir, 'client.mjs'), client.outputText);
  writeFileSync(join(dir, 'program.mjs'), out.outputText);
  const { run } = (await import(pathToFileURL(join(dir, 'program.mjs')).href)) as { run: (base: string) => Promise<Record<string, unknown>> };
  const result = await run(h.url);
  assert.deepEqual(
    { ...result, listed: (result.listed as number) >= 1 },
    { store: 'pglite', datasetClasses: 10, jobStatus: 'queued', pointer: '/hyperparameters/epochs', listed: true },
  );
});
