/**
 * The fields of a model upload, checked in order of cost: the form, then model.json and its
 * manifest against the files (cheap, in this process), then the model itself (a child process
 * with TensorFlow.js). Every refusal is a 400 whose errors point into the upload.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Artifacts } from '../../artifacts/artifacts.js';
import { untrainableLayers } from '../../artifacts/model-upload/layer-support.js';
import { parseModelJson, planWeights, storedWeightBytes, type ModelJson, type UploadedWeights } from '../../artifacts/model-upload/manifest.js';
import { ModelRejected, storeModel } from '../../artifacts/model-upload/store-model.js';
import type { ReceivedUpload } from '../upload-receiver.js';
import { fieldsProblem, type FieldError } from '../../plugins/problem.js';
import { preprocessingProblem, type Preprocessing } from '../../schemas/preprocessing.js';

export const MAX_MODEL_JSON_BYTES = 64 << 20;

export interface AcceptedModel {
  name: string;
  inputShape: number[] | null;
  classes: string[];
  preprocessing: Preprocessing | null;
  /** what the stored model takes on disk */
  bytes: number;
}

export interface ModelUploadDeps {
  artifacts: Artifacts;
  /** INGEST_MAX_HEAP_MB, for the check child */
  maxHeapMb: number;
  /** throws when the tenant's storage quota cannot hold `bytes` more */
  admit: (bytes: number) => Promise<void>;
}

export const rejected = (errors: FieldError[], slug = 'invalid_model', title = 'The model is not valid') => fieldsProblem({ status: 400, slug, title, errors });

/** `value` as preprocessing (src/schemas/preprocessing.ts), or a problem at `pointer`. */
export function checkPreprocessing(value: unknown, pointer: string, errors: FieldError[]): Preprocessing | undefined {
  const wrong = preprocessingProblem(value);
  if (wrong === undefined) return value as Preprocessing;
  errors.push({ pointer, in: 'body', detail: wrong });
  return undefined;
}

/** What userDefinedMetadata.tfjsAdapt says about classes and preprocessing, checked. */
function metadata(json: ModelJson, errors: FieldError[]): { classes?: unknown; preprocessing?: Preprocessing } {
  const meta = (json.userDefinedMetadata as { tfjsAdapt?: { classes?: unknown; preprocessing?: unknown } } | undefined)?.tfjsAdapt;
  if (!meta) return {};
  const at = '/modelJson/userDefinedMetadata/tfjsAdapt';
  const out: { classes?: unknown; preprocessing?: Preprocessing } = {};
  if (meta.classes !== undefined) {
    if (!Array.isArray(meta.classes) || !meta.classes.every((c) => typeof c === 'string'))
      errors.push({ pointer: `${at}/classes`, in: 'body', detail: 'must be an array of class names' });
    else out.classes = meta.classes;
  }
  if (meta.preprocessing !== undefined) {
    const p = checkPreprocessing(meta.preprocessing, `${at}/preprocessing`, errors);
    if (p) out.preprocessing = p;
  }
  return out;
}

/** A model's files, from a multipart upload or fetched from a URL. */
export interface ModelSource {
  /** model.json's text */
  text: string;
  weights: UploadedWeights[];
  name: string;
  /** given at upload; wins over userDefinedMetadata.tfjsAdapt.preprocessing */
  preprocessing?: Preprocessing;
}

export async function acceptModelUpload(upload: ReceivedUpload, dir: string, deps: ModelUploadDeps): Promise<AcceptedModel> {
  const errors: FieldError[] = [];
  const problem = (pointer: string, detail: string) => errors.push({ pointer, in: 'body', detail });
  for (const field of upload.fields.keys()) {
    if (field === 'weights') problem('/weights', 'must be file uploads (curl -F weights=@file.bin), not text');
    else if (!['name', 'modelJson', 'preprocessing'].includes(field))
      problem(`/${field}`, 'is not a known field (expected modelJson, weights and optionally name and preprocessing)');
  }
  for (const f of upload.files) {
    if (f.field !== 'modelJson' && f.field !== 'weights') problem(`/${f.field}`, 'is not a known file field (expected modelJson and weights)');
  }
  const names = upload.fields.get('name') ?? [];
  if (names.length > 1 || (names[0] !== undefined && (names[0].trim() === '' || names[0].length > 200)))
    problem('/name', 'must be given once, 1 to 200 characters');
  const preprocessingTexts = upload.fields.get('preprocessing') ?? [];
  let preprocessing: Preprocessing | undefined;
  if (preprocessingTexts.length > 1) problem('/preprocessing', 'is given more than once');
  else if (preprocessingTexts[0] !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(preprocessingTexts[0]);
    } catch {
      value = undefined;
    }
    preprocessing = checkPreprocessing(value, '/preprocessing', errors);
  }
  const jsonFiles = upload.files.filter((f) => f.field === 'modelJson');
  const jsonTexts = upload.fields.get('modelJson') ?? [];
  if (jsonFiles.length + jsonTexts.length === 0) problem('/modelJson', 'is required: the model.json file (curl -F modelJson=@model.json)');
  else if (jsonFiles.length + jsonTexts.length > 1) problem('/modelJson', 'is given more than once; expected one model.json');
  else if (jsonFiles[0] && jsonFiles[0].bytes > MAX_MODEL_JSON_BYTES)
    problem('/modelJson', `is ${jsonFiles[0].bytes} bytes; expected at most ${MAX_MODEL_JSON_BYTES}`);
  if (errors.length > 0) throw rejected(errors, 'validation', 'The request is not valid');

  const text = jsonFiles[0] ? await readFile(jsonFiles[0].path, 'utf8') : jsonTexts[0];
  const weights = await Promise.all(
    upload.files.filter((f) => f.field === 'weights').map(async (f) => ({ filename: f.filename, path: f.path, bytes: (await stat(f.path)).size })),
  );
  return acceptModel({ text, weights, name: names[0]?.trim() || 'uploaded model', ...(preprocessing ? { preprocessing } : {}) }, dir, deps);
}

/**
 * Checks a model's files (model.json, its layers, the manifest against the weights, the metadata)
 * and stores it in `dir`, dequantized; throws a 400 problem whose errors point into the upload.
 */
export async function acceptModel(source: ModelSource, dir: string, deps: ModelUploadDeps): Promise<AcceptedModel> {
  const parsed = parseModelJson(source.text);
  if ('errors' in parsed) throw parsed.code === 'too_deep' ? rejected(parsed.errors, 'too_deep', 'model.json nests too deep') : rejected(parsed.errors);
  const untrainable = untrainableLayers(parsed.json.modelTopology, '/modelJson/modelTopology');
  if (untrainable.length > 0) throw rejected(untrainable, 'untrainable_layers', 'The model has layers that cannot be trained');
  const planned = planWeights(parsed.json, source.weights);
  if ('errors' in planned) throw rejected(planned.errors);
  const errors: FieldError[] = [];
  const meta = metadata(parsed.json, errors);
  if (errors.length > 0) throw rejected(errors);
  // the stored model is its weights, dequantized, and (about) this model.json
  await deps.admit(storedWeightBytes(planned.plan) + source.text.length);

  let stored: Awaited<ReturnType<typeof storeModel>> | undefined;
  try {
    await deps.artifacts.writeDir(dir, async (tmp) => {
      stored = await storeModel(tmp, parsed.json, planned.plan, { maxHeapMb: deps.maxHeapMb });
      const declared = meta.classes as string[] | undefined;
      if (declared && declared.length !== stored.numClasses) {
        throw new ModelRejected([
          {
            pointer: '/modelJson/userDefinedMetadata/tfjsAdapt/classes',
            in: 'body',
            detail: `names ${declared.length} classes but the model outputs ${stored.numClasses} scores`,
          },
        ]);
      }
    });
  } catch (err) {
    if (err instanceof ModelRejected) throw rejected(err.errors);
    throw err;
  }
  if (!stored) throw new Error('storing the model answered nothing');
  const { inputShape, numClasses } = stored;
  const classes = (meta.classes as string[] | undefined) ?? Array.from({ length: numClasses }, (_, i) => String(i));
  const sizes = await Promise.all(['model.json', 'weights.bin'].map(async (f) => (await stat(join(dir, f))).size));
  return { name: source.name, inputShape, classes, preprocessing: source.preprocessing ?? meta.preprocessing ?? null, bytes: sizes.reduce((a, b) => a + b, 0) };
}
