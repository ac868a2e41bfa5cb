/**
 * `npm run lint:deploy`: checks the deployment files against the schemas of the tools that read
 * them, so a broken file fails CI rather than a `docker compose up` or `kubectl apply`.
 * - docker-compose.yml: the Compose Specification's JSON schema, the copy dclint ships (its
 *   schemas/compose.schema.json is compose-spec's schema/compose-spec.json).
 * - docker/k8s/*.yaml, every document: the Kubernetes OpenAPI schema of its apiVersion and kind
 *   (kubernetes-models), KEDA's CRD schema for KEDA's kinds (@kubernetes-models/keda). A kind with
 *   no schema here is an error, so no manifest goes unchecked.
 * Everything comes from npm packages; nothing is fetched at run time. Like kubeconform without
 * -strict, these schemas accept fields they do not know (Kubernetes' published schemas allow
 * them); `kubectl apply --dry-run=server` against a cluster also rejects those.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
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

/** The kinds docker/k8s/ may use; add a kind here (with its model) before using it there. */
const MODELS: KindModel[] = [ConfigMap, PersistentVolumeClaim, Service, Deployment, PodDisruptionBudget, ScaledObject];

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
    const detail = e.keyword === 'additionalProperties' ? ` '${String(e.params.additionalProperty)}'` : e.keyword === 'enum' ? `: ${JSON.stringify(e.params.allowedValues)}` : '';
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
  parseAllDocuments(text).forEach((d, i) => {
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

export function checkManifests(file: string, text: string): Problem[] {
  const { docs, problems } = documents(file, text);
  docs.forEach((doc, i) => {
    const at = { file, doc: i + 1 };
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      problems.push({ ...at, pointer: '/', message: 'expected a Kubernetes object (a mapping with apiVersion and kind)' });
      return;
    }
    const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown };
    const model = MODELS.find((m) => m.apiVersion === apiVersion && m.kind === kind);
    if (!model) {
      const known = MODELS.map((m) => `${m.apiVersion} ${m.kind}`).join(', ');
      problems.push({ ...at, pointer: '/kind', message: `no schema for ${JSON.stringify(apiVersion)} ${JSON.stringify(kind)}: expected one of ${known} (docker/lint-deploy.ts lists them)` });
      return;
    }
    try {
      new model(doc as never).validate();
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
  const manifests = (await readdir(k8sDir)).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(k8sDir, f));
  const name = (f: string) => relative(root, f);
  const problems = await checkCompose(name(composeFile), await readFile(composeFile, 'utf8'));
  for (const f of manifests) problems.push(...checkManifests(name(f), await readFile(f, 'utf8')));
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
