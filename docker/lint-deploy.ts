/**
 * `npm run lint:deploy`: checks the deployment files against the schemas of the tools that read
 * them, so a broken file fails CI rather than a `docker compose up` or `kubectl apply`.
 * - docker-compose.yml: the Compose Specification's JSON schema, the copy dclint ships (its
 *   schemas/compose.schema.json is compose-spec's schema/compose-spec.json).
 * - docker/k8s/*.yaml, every document: the Kubernetes OpenAPI schema of its apiVersion and kind
 *   (kubernetes-models), KEDA's CRD schema for KEDA's kinds (@kubernetes-models/keda). A kind with
 *   no schema here is an error, so no manifest goes unchecked.
 * - Unknown fields (a misspelt `readinesProbe` would otherwise be dropped silently): those schemas
 *   allow them, as Kubernetes' published ones do, so each document is also type-checked as an
 *   object literal of the same package's TypeScript type, whose excess-property check names them
 *   (what kubeconform's -strict does with schemas that forbid additional properties).
 * Everything comes from npm packages; nothing is fetched at run time.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';

/** One thing wrong: the file, the document in it (from 1), the JSON pointer and what was expected. */
export interface Problem {
  file: string;
  doc?: number;
  pointer: string;
  message: string;
}

interface KindModel {
  apiVersion: string;
  kind: string;
  new (data: never): { validate(): void };
}

/** The kinds docker/k8s/ may use, each with the module of its TypeScript type `I<kind>`; add a kind here before using it there. */
const MODELS: Array<{ model: KindModel; types: string }> = [
  { model: ConfigMap, types: 'kubernetes-models/v1/ConfigMap' },
  { model: PersistentVolumeClaim, types: 'kubernetes-models/v1/PersistentVolumeClaim' },
  { model: Service, types: 'kubernetes-models/v1/Service' },
  { model: Deployment, types: 'kubernetes-models/apps/v1/Deployment' },
  { model: PodDisruptionBudget, types: 'kubernetes-models/policy/v1/PodDisruptionBudget' },
  { model: ScaledObject, types: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject' },
];

const require = createRequire(import.meta.url);
const ajv = new Ajv({ allErrors: true, strict: false });
let composeSchema: ReturnType<Ajv['compile']> | undefined;

async function compose(): Promise<ReturnType<Ajv['compile']>> {
  if (!composeSchema) {
    const file = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
    // it names draft-07 by an https URL, which Ajv does not know under that name; Ajv is draft-07
    const { $schema, ...schema } = JSON.parse(await readFile(file, 'utf8')) as { $schema?: string };
    if (!$schema?.includes('draft-07')) throw new Error(`${file}: expected a draft-07 schema, found ${$schema}`);
    composeSchema = ajv.compile(schema);
  }
  return composeSchema;
}

function fromAjv(errors: ErrorObject[] | null | undefined, at: Omit<Problem, 'pointer' | 'message'>): Problem[] {
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const e of errors ?? []) {
    const detail =
      e.keyword === 'additionalProperties'
        ? ` '${String(e.params.additionalProperty)}'`
        : e.keyword === 'enum'
          ? `: ${JSON.stringify(e.params.allowedValues)}`
          : '';
    const message = `${e.message ?? e.keyword}${detail}`;
    const key = `${e.instancePath} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ ...at, pointer: e.instancePath || '/', message });
  }
  return out;
}

/** Parses YAML documents; a syntax error is a problem at its line and column. */
function documents(file: string, text: string): { docs: unknown[]; problems: Problem[] } {
  const docs: unknown[] = [];
  const problems: Problem[] = [];
  // merge keys (<<: *anchor) as docker compose reads them
  parseAllDocuments(text, { merge: true }).forEach((d, i) => {
    for (const e of d.errors) problems.push({ file, doc: i + 1, pointer: '/', message: `YAML: ${e.message.split('\n')[0]}` });
    if (d.errors.length === 0 && d.contents !== null) docs.push(d.toJS());
  });
  return { docs, problems };
}

export async function checkCompose(file: string, text: string): Promise<Problem[]> {
  const { docs, problems } = documents(file, text);
  if (problems.length > 0) return problems;
  if (docs.length !== 1) return [{ file, pointer: '/', message: `expected one YAML document, found ${docs.length}` }];
  const validate = await compose();
  return validate(docs[0]) ? [] : fromAjv(validate.errors, { file });
}

/** Appends `value` as a TypeScript literal to `out.text`, noting where each property name starts and its JSON pointer. */
function literal(value: unknown, pointer: string, out: { text: string; keys: Map<number, string> }): void {
  if (Array.isArray(value)) {
    out.text += '[';
    value.forEach((v, i) => {
      if (i > 0) out.text += ',';
      literal(v, `${pointer}/${i}`, out);
    });
    out.text += ']';
  } else if (typeof value === 'object' && value !== null) {
    out.text += '{';
    Object.entries(value).forEach(([k, v], i) => {
      if (i > 0) out.text += ',';
      const at = `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      out.keys.set(out.text.length, at);
      out.text += `${JSON.stringify(k)}:`;
      literal(v, at, out);
    });
    out.text += '}';
  } else {
    out.text += JSON.stringify(value ?? null);
  }
}

const EXCESS_PROPERTY = new Set([2353, 2561]); // "Object literal may only specify known properties" (2561 adds a suggestion)

interface TypedDoc {
  file: string;
  doc: number;
  value: object;
  /** the module of its kind's TypeScript type */
  types: string;
}

/** Unknown fields of `docs`, found by type-checking each as a literal of its kind's type (one program for all). */
function unknownFields(docs: TypedDoc[], root: string): Problem[] {
  if (docs.length === 0) return [];
  const out = { text: '', keys: new Map<number, string>() };
  const ranges: Array<{ file: string; doc: number; start: number; end: number }> = [];
  docs.forEach(({ file, doc, value, types }, i) => {
    const type = `I${(value as { kind: string }).kind}`;
    const start = out.text.length;
    out.text += `import type { ${type} as T${i} } from ${JSON.stringify(types)};\nexport const d${i}: T${i} = `;
    literal(value, '', out);
    ranges.push({ file, doc, start, end: out.text.length });
    out.text += ';\n';
  });
  // a file beside package.json, so its imports resolve from this repository's node_modules
  const name = join(root, '__lint-deploy__.mts');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (f === name ? ts.createSourceFile(f, out.text, lang) : read(f, lang, ...rest));
  const exists = host.fileExists.bind(host);
  host.fileExists = (f) => f === name || exists(f);
  const program = ts.createProgram([name], options, host);
  const problems: Problem[] = [];
  for (const d of program.getSemanticDiagnostics(program.getSourceFile(name))) {
    const at = d.start;
    if (at === undefined) continue;
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    const range = ranges.find((r) => r.start <= at && at < r.end);
    const where = range ? { file: range.file, doc: range.doc } : { file: name };
    if (EXCESS_PROPERTY.has(d.code)) {
      const field = /'"?([^'"]+)"?' does not exist/.exec(message)?.[1] ?? '?';
      problems.push({ ...where, pointer: out.keys.get(at) ?? '/', message: `unknown field '${field}'` });
    } else if (d.code === 2305 || d.code === 2307) {
      // a kind's types module or name that moved: say so rather than pass unchecked
      problems.push({ ...where, pointer: '/kind', message: `cannot check unknown fields: ${message}` });
    }
  }
  return problems;
}

/** Checks Kubernetes manifests (files of YAML documents); `root` is where their types' packages resolve from. */
export function checkManifests(files: Array<{ file: string; text: string }>, root = process.cwd()): Problem[] {
  const problems: Problem[] = [];
  const typed: TypedDoc[] = [];
  for (const { file, text } of files) problems.push(...checkKinds(file, text, typed));
  problems.push(...unknownFields(typed, root));
  return problems;
}

/** Each document against the schema of its kind; the documents that have one are added to `typed`. */
function checkKinds(file: string, text: string, typed: TypedDoc[]): Problem[] {
  const { docs, problems } = documents(file, text);
  docs.forEach((doc, i) => {
    const at = { file, doc: i + 1 };
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      problems.push({ ...at, pointer: '/', message: 'expected a Kubernetes object (a mapping with apiVersion and kind)' });
      return;
    }
    const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown };
    const entry = MODELS.find(({ model: m }) => m.apiVersion === apiVersion && m.kind === kind);
    if (!entry) {
      const known = MODELS.map(({ model: m }) => `${m.apiVersion} ${m.kind}`).join(', ');
      problems.push({
        ...at,
        pointer: '/kind',
        message: `no schema for ${JSON.stringify(apiVersion)} ${JSON.stringify(kind)}: expected one of ${known} (docker/lint-deploy.ts lists them)`,
      });
      return;
    }
    typed.push({ file, doc: i + 1, value: doc, types: entry.types });
    try {
      new entry.model(doc as never).validate();
    } catch (err) {
      const errors = (err as { errors?: ErrorObject[] }).errors;
      if (!errors) throw err;
      problems.push(...fromAjv(errors, at));
    }
  });
  return problems;
}

/** Checks docker-compose.yml and every docker/k8s/*.yaml under `root`. */
export async function lintDeploy(root: string): Promise<{ checked: string[]; problems: Problem[] }> {
  const composeFile = join(root, 'docker-compose.yml');
  const k8sDir = join(root, 'docker', 'k8s');
  const manifests = (await readdir(k8sDir))
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(k8sDir, f));
  const name = (f: string) => relative(root, f);
  const problems = await checkCompose(name(composeFile), await readFile(composeFile, 'utf8'));
  const files = await Promise.all(manifests.map(async (f) => ({ file: name(f), text: await readFile(f, 'utf8') })));
  problems.push(...checkManifests(files, root));
  return { checked: [composeFile, ...manifests].map(name), problems };
}

async function main(): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const { checked, problems } = await lintDeploy(root);
  for (const p of problems) console.error(`${p.file}${p.doc ? ` (document ${p.doc})` : ''} ${p.pointer}: ${p.message}`);
  console.log(`lint:deploy: ${checked.length} files checked, ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
  if (problems.length > 0) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
