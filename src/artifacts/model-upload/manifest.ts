/**
 * Reads an uploaded model.json and pairs its weights manifest with the uploaded weight files,
 * without TensorFlow.js: every problem is reported with a JSON pointer into the upload
 * (`/modelJson/...` inside model.json, `/weights` for the files).
 */
import type { FieldError } from '../../field-error.js';
import { jsonSyntaxError } from '../ingest/json-locate.js';
import { jsonTooDeep, lineColumn as at } from '../json-depth.js';

/** Keras topologies nest a few levels per nested model; this leaves room for deep nests of them */
export const MAX_MODEL_JSON_DEPTH = 100;

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface ModelJson {
  modelTopology: Record<string, unknown>;
  weightsManifest: Array<{ paths: string[]; weights: WeightSpec[] }>;
  format?: string;
  userDefinedMetadata?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface UploadedWeights {
  filename: string;
  path: string;
  bytes: number;
}

/** Where each weight lives in the one weights.bin the model is stored with. */
export interface WeightPlan {
  /** the files to concatenate, in manifest order */
  files: UploadedWeights[];
  /** every weight spec in manifest order, with its pointer in the uploaded model.json */
  specs: Array<{ spec: WeightSpec; pointer: string }>;
  totalBytes: number;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

const problem = (pointer: string, detail: string): FieldError => ({ pointer, in: 'body', detail });

function lineColumn(text: string, offset: number): string {
  const { line, column } = at(text, offset);
  return `line ${line}, column ${column}`;
}

/** `too_deep`: the text nests deeper than MAX_MODEL_JSON_DEPTH, refused before it is parsed. */
export function parseModelJson(text: string): { json: ModelJson } | { errors: FieldError[]; code?: 'too_deep' } {
  const deep = jsonTooDeep(text, MAX_MODEL_JSON_DEPTH);
  if (deep) {
    return {
      code: 'too_deep',
      errors: [
        problem(
          '/modelJson',
          `nests arrays and objects deeper than ${MAX_MODEL_JSON_DEPTH} levels at ${lineColumn(text, deep.at)}; expected a tfjs model.json`,
        ),
      ],
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const where = jsonSyntaxError(text);
    const detail = where ? `${where.message} at ${lineColumn(text, where.at)}` : (err as Error).message;
    return { errors: [problem('/modelJson', `is not valid JSON: ${detail}`)] };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { errors: [problem('/modelJson', 'must be a JSON object (a tfjs model.json)')] };
  const m = json as Record<string, unknown>;
  const errors: FieldError[] = [];
  if (m.format === 'graph-model') {
    errors.push(
      problem(
        '/modelJson/format',
        'is "graph-model"; only LayersModels can be fine-tuned (save with model.save() or convert with --output_format=tfjs_layers_model)',
      ),
    );
  }
  if (m.modelTopology === null || typeof m.modelTopology !== 'object' || Array.isArray(m.modelTopology)) {
    errors.push(problem('/modelJson/modelTopology', 'is required: the Keras-style description of the layers'));
  }
  if (!Array.isArray(m.weightsManifest)) {
    errors.push(problem('/modelJson/weightsManifest', 'is required: an array of {paths, weights} groups'));
  } else {
    m.weightsManifest.forEach((group: unknown, g: number) => {
      const at = `/modelJson/weightsManifest/${g}`;
      const grp = group as { paths?: unknown; weights?: unknown } | null;
      if (!grp || typeof grp !== 'object') return errors.push(problem(at, 'must be an object {paths, weights}'));
      if (!Array.isArray(grp.paths) || grp.paths.length === 0 || !grp.paths.every((p) => typeof p === 'string' && p !== '')) {
        errors.push(problem(`${at}/paths`, 'must be a non-empty array of weight file names'));
      }
      if (!Array.isArray(grp.weights)) return errors.push(problem(`${at}/weights`, 'must be an array of weight specs {name, shape, dtype}'));
      grp.weights.forEach((w: unknown, k: number) => {
        const wat = `${at}/weights/${k}`;
        const spec = w as Partial<WeightSpec> | null;
        if (!spec || typeof spec !== 'object') return errors.push(problem(wat, 'must be an object {name, shape, dtype}'));
        if (typeof spec.name !== 'string' || spec.name === '') errors.push(problem(`${wat}/name`, 'must be a non-empty string'));
        if (!Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && d >= 0))
          errors.push(problem(`${wat}/shape`, 'must be an array of non-negative integers'));
        const dtype = spec.quantization ? spec.quantization.dtype : spec.dtype;
        if (typeof dtype !== 'string' || BYTES[dtype] === undefined || (!spec.quantization && !['float32', 'int32', 'bool'].includes(dtype))) {
          errors.push(
            problem(
              `${wat}/${spec.quantization ? 'quantization/dtype' : 'dtype'}`,
              `is ${JSON.stringify(dtype)}; expected ${spec.quantization ? 'uint8, uint16 or float16' : 'float32, int32 or bool'}`,
            ),
          );
        }
        const q = spec.quantization;
        if (q && (q.dtype === 'uint8' || q.dtype === 'uint16') && !(Number.isFinite(q.scale) && Number.isFinite(q.min))) {
          errors.push(
            problem(`${wat}/quantization`, `is ${q.dtype} without finite "scale" and "min"; expected {dtype, scale, min} as tfjs-converter writes them`),
          );
        }
        if (q && spec.dtype !== 'float32' && spec.dtype !== 'int32')
          errors.push(problem(`${wat}/dtype`, `is ${JSON.stringify(spec.dtype)} with quantization; expected float32 or int32`));
        return undefined;
      });
      return undefined;
    });
  }
  return errors.length > 0 ? { errors } : { json: m as ModelJson };
}

export const specBytes = (spec: WeightSpec) => spec.shape.reduce((a, b) => a * b, 1) * BYTES[spec.quantization ? spec.quantization.dtype : spec.dtype];

const basename = (p: string) => p.split(/[\\/]/).pop()!;

/**
 * Pairs manifest paths with uploaded files (by file name; a single file fits a single path
 * whatever its name) and checks each group's files hold exactly its weights' bytes.
 */
export function planWeights(json: ModelJson, uploaded: UploadedWeights[]): { plan: WeightPlan } | { errors: FieldError[] } {
  const errors: FieldError[] = [];
  const paths = json.weightsManifest.flatMap((g, gi) => g.paths.map((p, pi) => ({ path: p, pointer: `/modelJson/weightsManifest/${gi}/paths/${pi}` })));
  const byName = new Map<string, UploadedWeights>();
  for (const f of uploaded) {
    if (byName.has(f.filename))
      errors.push(problem('/weights', `two uploaded files are named ${JSON.stringify(f.filename)}; each weights file is matched to the manifest by its name`));
    byName.set(f.filename, f);
  }
  const single = paths.length === 1 && uploaded.length === 1;
  const files: UploadedWeights[] = [];
  const used = new Set<UploadedWeights>();
  for (const { path, pointer } of paths) {
    const file = single ? uploaded[0] : byName.get(basename(path));
    if (!file) {
      const names = uploaded.map((f) => JSON.stringify(f.filename)).join(', ') || 'none';
      errors.push(problem(pointer, `names weights file ${JSON.stringify(path)}, but no uploaded \`weights\` file has that name (uploaded: ${names})`));
      continue;
    }
    files.push(file);
    used.add(file);
  }
  for (const f of uploaded) {
    if (!used.has(f))
      errors.push(problem('/weights', `file ${JSON.stringify(f.filename)} is not named in the weights manifest; expected only the files it lists`));
  }
  if (errors.length > 0) return { errors };

  const specs: WeightPlan['specs'] = [];
  let fileIndex = 0;
  let totalBytes = 0;
  json.weightsManifest.forEach((group, g) => {
    const have = group.paths.reduce((sum) => sum + files[fileIndex++].bytes, 0);
    let need = 0;
    group.weights.forEach((spec, k) => {
      const pointer = `/modelJson/weightsManifest/${g}/weights/${k}`;
      const bytes = specBytes(spec);
      if (need <= have && need + bytes > have) {
        errors.push(
          problem(
            pointer,
            `weight ${JSON.stringify(spec.name)} (shape [${spec.shape.join(', ')}], ${bytes} bytes) needs bytes ${need} to ${need + bytes} of group ${g}, but its files hold only ${have} bytes: the weights file is missing or too short`,
          ),
        );
      }
      need += bytes;
      specs.push({ spec, pointer });
    });
    if (have > need) {
      errors.push(
        problem(
          `/modelJson/weightsManifest/${g}`,
          `the files of this group hold ${have} bytes, ${have - need} more than its ${group.weights.length} weights need (${need}); the manifest and the files do not match`,
        ),
      );
    }
    totalBytes += need;
  });
  return errors.length > 0 ? { errors } : { plan: { files, specs, totalBytes } };
}

/**
 * model.json as uploaded but with one weights group in one file, weights.bin (which the check
 * child then rewrites dequantized); userDefinedMetadata and every other field kept as they are.
 */
export function storedModelJson(json: ModelJson, plan: WeightPlan): ModelJson {
  return { ...json, weightsManifest: [{ paths: ['weights.bin'], weights: plan.specs.map((s) => s.spec) }] };
}

/** What the weights take once stored dequantized (float32 for quantized floats). */
export const storedWeightBytes = (plan: WeightPlan) =>
  plan.specs.reduce((sum, s) => sum + s.spec.shape.reduce((a, b) => a * b, 1) * (s.spec.quantization ? 4 : BYTES[s.spec.dtype]), 0);
