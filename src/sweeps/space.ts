/**
 * The search space of a sweep: which parameter values each trial gets. Pure and deterministic:
 * a grid is enumerated in order (the parameter whose pointer sorts first varies slowest), and a random search draws
 * from one seeded stream, so the same spec and seed always give the same trials (a replay).
 */
import { mulberry32 } from '../artifacts/ingest/random.js';
import type { FieldError } from '../field-error.js';
import type { Parameter, ParameterRange, SweepSpec } from '../schemas/sweep.js';
import { escapeToken } from './pointer.js';

export type TrialParameters = Record<string, unknown>;

const DEFAULT_GRID_POINTS = 3;

const isRange = (p: Parameter): p is ParameterRange => 'min' in p;
export const parameterPointer = (pointer: string) => `/parameters/${escapeToken(pointer)}`;

/** What is wrong with the parameters' domains themselves, before any trial is built. */
export function spaceProblems(spec: Pick<SweepSpec, 'parameters' | 'algorithm'>): FieldError[] {
  const errors: FieldError[] = [];
  for (const [pointer, p] of Object.entries(spec.parameters)) {
    const at = parameterPointer(pointer);
    const problem = (field: string, detail: string) => errors.push({ pointer: `${at}${field}`, in: 'body', detail });
    if (!isRange(p)) continue;
    if (!Number.isFinite(p.min) || !Number.isFinite(p.max)) problem('', 'needs finite min and max');
    else if (p.min > p.max) problem('/min', `is ${p.min}, above max ${p.max}; expected min <= max`);
    if (p.scale === 'log' && !(p.min > 0)) problem('/min', `is ${p.min}; a log scale needs min > 0`);
    if (p.type === 'int' && Math.ceil(p.min) > Math.floor(p.max)) problem('', `holds no integer from ${p.min} to ${p.max}`);
    if (p.gridPoints !== undefined && spec.algorithm !== 'grid') problem('/gridPoints', 'applies to algorithm grid only');
  }
  return errors;
}

function onScale(p: ParameterRange, u: number): number {
  const x = p.scale === 'log' ? Math.exp(Math.log(p.min) + u * (Math.log(p.max) - Math.log(p.min))) : p.min + u * (p.max - p.min);
  // rounding keeps an int within [ceil(min), floor(max)]; floats are kept to 6 significant digits, as a user would write them
  return p.type === 'int' ? Math.min(Math.floor(p.max), Math.max(Math.ceil(p.min), Math.round(x))) : +x.toPrecision(6);
}

/** The values a grid tries for one parameter: the choices, or gridPoints spread evenly on the scale (duplicates of an int range dropped). */
export function gridValues(p: Parameter): unknown[] {
  if (!isRange(p)) return p.values;
  const n = p.min === p.max ? 1 : (p.gridPoints ?? DEFAULT_GRID_POINTS);
  const values = Array.from({ length: n }, (_, i) => onScale(p, n === 1 ? 0 : i / (n - 1)));
  return [...new Set(values)];
}

export function gridSize(parameters: SweepSpec['parameters']): number {
  return Object.values(parameters).reduce((n, p) => n * gridValues(p).length, 1);
}

/**
 * The parameters in pointer order: the order a grid and a random draw take them in. Not the
 * request's key order, which the stored spec (jsonb) does not keep: a sweep read back and posted
 * again must replay.
 */
export const orderedParameters = (parameters: SweepSpec['parameters']) => Object.entries(parameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** The trials' parameters, `count` of them (a grid is enumerated whole: count is its size). */
export function trialParameters(spec: Pick<SweepSpec, 'parameters' | 'algorithm'>, { seed, count }: { seed: number; count: number }): TrialParameters[] {
  const entries = orderedParameters(spec.parameters);
  if (spec.algorithm === 'grid') {
    let trials: TrialParameters[] = [{}];
    for (const [pointer, p] of entries) trials = trials.flatMap((t) => gridValues(p).map((v) => ({ ...t, [pointer]: v })));
    return trials.slice(0, count);
  }
  const random = mulberry32(seed);
  return Array.from({ length: count }, () =>
    Object.fromEntries(entries.map(([pointer, p]) => [pointer, isRange(p) ? onScale(p, random()) : p.values[Math.floor(random() * p.values.length)]])),
  );
}
