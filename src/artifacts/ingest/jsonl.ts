/** JSON Lines uploads: one `{"x": number | number[] | number[][]..., "y": int | string}` per line. */
import { closeSync, openSync } from 'node:fs';
import { DatasetWriter } from './dataset-writer.js';
import { IngestError } from './ingest-error.js';
import type { IngestResult, JsonlJob } from './job.js';
import { jsonTooDeep } from '../json-depth.js';
import { jsonSyntaxError, jsonValueOffset, toPointer } from './json-locate.js';
import { emptyClassProblem, LabelSet } from './label-set.js';
import { LineReader } from './line-reader.js';

const FIELD = 'file';
/** {"x": [[[...]]]} of an image with channels is 4 deep; far deeper is an attack or a mistake */
export const MAX_JSONL_DEPTH = 32;
const FLOAT32_MAX = 3.4028234663852886e38;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 30 ? `${v.slice(0, 30)}...` : v)}`;
  if (typeof v === 'object') return 'an object';
  // what is left of JSON: a number or a boolean, which JSON writes as JavaScript does
  return `${typeof v} ${JSON.stringify(v)}`;
}

export function ingestJsonl(job: JsonlJob): IngestResult {
  const fd = openSync(job.file, 'r');
  const lines = new LineReader(fd, FIELD);
  let writer: DatasetWriter | undefined;
  const labels = new LabelSet(job.classes);
  let shape: number[] | undefined;
  let shapeLine = 0;
  try {
    for (let text = lines.next(); text !== null; text = lines.next()) {
      if (text.trim() === '') continue;
      const line = lines.line;
      const fail = (code: string, path: Array<string | number>, detail: string): never => {
        const pointer = toPointer(path);
        const offset = jsonValueOffset(text, path.map(String));
        const column = offset === undefined ? undefined : offset + 1;
        throw new IngestError(code, `line ${line}${column ? `, column ${column}` : ''}: ${pointer || 'the line'} ${detail}`, {
          field: FIELD,
          line,
          ...(column ? { column } : {}),
          pointer,
        });
      };
      const deep = jsonTooDeep(text, MAX_JSONL_DEPTH);
      if (deep) {
        throw new IngestError(
          'too_deep',
          `line ${line}, column ${deep.at + 1}: arrays and objects nest deeper than ${MAX_JSONL_DEPTH} levels here; expected {"x": ..., "y": ...} with x at most ${MAX_JSONL_DEPTH - 1} arrays deep`,
          {
            field: FIELD,
            line,
            column: deep.at + 1,
            expected: MAX_JSONL_DEPTH,
          },
        );
      }
      let item: unknown;
      try {
        item = JSON.parse(text);
      } catch (err) {
        const where = jsonSyntaxError(text);
        const column = where ? where.at + 1 : undefined;
        throw new IngestError(
          'invalid_json',
          `line ${line}${column ? `, column ${column}` : ''}: not valid JSON: ${where?.message ?? (err as Error).message}`,
          {
            field: FIELD,
            line,
            ...(column ? { column } : {}),
          },
        );
      }
      if (item === null || typeof item !== 'object' || Array.isArray(item))
        fail('invalid_example', [], `is ${describe(item)}; expected an object {"x": [...], "y": label}`);
      const { x, y } = item as { x?: unknown; y?: unknown };
      if (x === undefined) fail('invalid_example', ['x'], 'is missing; expected the features, a number or a (nested) array of numbers');
      if (y === undefined) fail('invalid_example', ['y'], 'is missing; expected the label, a non-negative integer or a string');

      if (shape === undefined) {
        shape = [];
        for (let v = x; Array.isArray(v); v = v[0]) {
          if (v.length === 0) fail('ragged', ['x', ...shape.map(() => 0)], 'is an empty array; expected at least one number');
          shape.push(v.length);
        }
        shapeLine = line;
        const size = shape.reduce((a, b) => a * b, 1);
        if (job.imageShape && job.imageShape.reduce((a, b) => a * b, 1) !== size) {
          throw new IngestError(
            'image_shape_mismatch',
            `line ${line}: imageShape [${job.imageShape.join(', ')}] does not hold the ${size} values of x (shape [${shape.join(', ')}])`,
            {
              field: FIELD,
              line,
              pointer: '/x',
            },
          );
        }
        writer = new DatasetWriter({ dir: job.outDir, featureSize: size, dtype: 'float32', narrow: true, limit: job.limit, field: FIELD });
      }
      const slot = writer!.slot();
      let k = 0;
      const dims = shape;
      const walk = (v: unknown, depth: number, path: Array<string | number>): void => {
        if (depth === dims.length) {
          if (typeof v !== 'number') fail('not_numeric', path, `is ${describe(v)}; expected a number`);
          const n = v as number;
          if (!(Math.abs(n) <= FLOAT32_MAX)) fail('not_finite', path, `is ${n}, beyond the float32 range (±3.4e38)`);
          slot[k++] = n;
          return;
        }
        const expected = `x has shape [${dims.join(', ')}] (set by line ${shapeLine})`;
        if (!Array.isArray(v)) fail('ragged', path, `is ${describe(v)}; expected an array of ${dims[depth]} because ${expected}`);
        const a = v as unknown[];
        if (a.length !== dims[depth]) fail('ragged', path, `has ${a.length} elements; expected ${dims[depth]} because ${expected}`);
        if (depth === dims.length - 1) {
          // the innermost level, where nearly all values are: checked without building paths
          for (let j = 0; j < a.length; j++) {
            const n = a[j];
            if (typeof n === 'number' && Math.abs(n) <= FLOAT32_MAX) slot[k++] = n;
            else walk(n, depth + 1, [...path, j]);
          }
          return;
        }
        for (let j = 0; j < a.length; j++) walk(a[j], depth + 1, [...path, j]);
      };
      walk(x, 0, ['x']);

      let label: string;
      if (typeof y === 'number' && Number.isInteger(y) && y >= 0) label = String(y);
      else if (typeof y === 'string' && y.trim() !== '') label = y.trim();
      else label = fail('invalid_label', ['y'], `is ${describe(y)}; expected a non-negative integer or a non-empty string`);
      const index = labels.index(label);
      if (typeof index !== 'number') fail(index.code, ['y'], `is not usable: ${index.message}`);
      writer!.commit(index as number);
    }
    if (!writer || writer.count === 0) {
      throw new IngestError('empty', 'the file has no examples; expected one JSON object {"x": ..., "y": ...} per line', { field: FIELD, line: 1 });
    }
    const { classes, mapping } = labels.finish();
    const written = writer.finish(mapping, classes.length);
    writer = undefined;
    const empty = emptyClassProblem(classes, written.classCounts, labels.isDeclared);
    if (empty) throw new IngestError('class_without_examples', empty.message, { field: FIELD, class: empty.class });
    const featureShape = shape!.length === 0 ? [1] : shape!;
    return {
      numExamples: written.numExamples,
      featureShape,
      featureDtype: written.featureDtype,
      imageShape: job.imageShape ?? imageShapeOf(featureShape),
      classes,
      classCounts: written.classCounts,
      preprocessing: job.preprocessing ?? { scale: 1, offset: 0 },
    };
  } finally {
    writer?.abort();
    closeSync(fd);
  }
}

/** Nested x of [h, w] or [h, w, 1 | 3] is an image. */
function imageShapeOf(shape: number[]): number[] | null {
  if (shape.length === 2) return [shape[0], shape[1], 1];
  if (shape.length === 3 && (shape[2] === 1 || shape[2] === 3)) return shape;
  return null;
}
