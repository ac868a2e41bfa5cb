/**
 * JSON examples of a prediction request, checked against the model's input shape and packed
 * into one Float32Array. An example is nested as the shape says ([28, 28, 1]: 28 arrays of 28
 * arrays of one number) or flat (784 numbers), raw values as the datasets store them.
 */
import type { FieldError } from '../field-error.js';

/** Complaints reported at most, so a request of many bad examples gets a short answer. */
const MAX_ERRORS = 10;

const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** What an example must look like, for error messages. */
export function expectedShape(inputShape: readonly number[]): string {
  const size = inputShape.reduce((a, b) => a * b, 1);
  return inputShape.length === 1 ? `${size} numbers` : `an array of shape ${shapeText(inputShape)} of numbers, or ${size} numbers flat`;
}

export function packExamples(examples: readonly unknown[], inputShape: readonly number[]): { values: Float32Array } | { errors: FieldError[] } {
  const size = inputShape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(examples.length * size);
  const errors: FieldError[] = [];
  for (let i = 0; i < examples.length && errors.length < MAX_ERRORS; i++) {
    const example = examples[i];
    const pointer = `/examples/${i}`;
    const flat = Array.isArray(example) && example.length === size && example.every((v) => typeof v === 'number');
    const problem = flat ? undefined : nestedProblem(example, inputShape, 0, pointer);
    if (problem !== undefined) {
      errors.push({ pointer: problem.pointer, in: 'body', detail: `${problem.detail}; expected ${expectedShape(inputShape)}` });
      continue;
    }
    let at = i * size;
    const write = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(write);
      else values[at++] = v as number;
    };
    write(example);
  }
  return errors.length > 0 ? { errors } : { values };
}

/** Where `value` first departs from `shape` (from dimension `dim`), or undefined when it fits. */
function nestedProblem(value: unknown, shape: readonly number[], dim: number, pointer: string): { pointer: string; detail: string } | undefined {
  if (dim === shape.length) {
    return typeof value === 'number' ? undefined : { pointer, detail: `is ${describe(value)}, not a number` };
  }
  if (!Array.isArray(value)) return { pointer, detail: `is ${describe(value)}, not an array` };
  if (value.length !== shape[dim]) {
    const whole = dim === 0 ? `has ${value.length} entries` : `has ${value.length} entries at depth ${dim} (of shape ${shapeText(shape)})`;
    return { pointer, detail: whole };
  }
  for (let k = 0; k < value.length; k++) {
    const problem = nestedProblem(value[k], shape, dim + 1, `${pointer}/${k}`);
    if (problem) return problem;
  }
  return undefined;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  return typeof v === 'string' ? `the string ${JSON.stringify(v.slice(0, 20))}` : `a ${typeof v}`;
}
