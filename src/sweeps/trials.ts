/**
 * Every trial of a sweep, built when the sweep is created: the parameters applied to a copy of
 * the template, and each trial's spec held to the schema and the rules of a job create
 * (specProblems). A problem is reported where the caller can fix it: at the parameter whose
 * value caused it (`/parameters/~1method~1weight`), else at the template field.
 */
import { Value } from '@sinclair/typebox/value';
import type { FieldError } from '../field-error.js';
import { specProblems } from '../jobs/spec-rules.js';
import { JobSpec } from '../schemas/job.js';
import { MAX_TRIALS, type SweepSpec } from '../schemas/sweep.js';
import { parsePointer, setAt } from './pointer.js';
import { gridSize, parameterPointer, spaceProblems, trialParameters, type TrialParameters } from './space.js';

export interface PlannedTrial {
  parameters: TrialParameters;
  spec: JobSpec;
}

/** Where a trial's problem at `pointer` (into its job spec) belongs in the sweep request. */
function sweepPointer(pointer: string, parameters: readonly string[]): string {
  const owner = parameters.find((p) => pointer === p || pointer.startsWith(`${p}/`) || p.startsWith(`${pointer}/`));
  return owner === undefined ? `/template${pointer === '/' ? '' : pointer}` : parameterPointer(owner);
}

/** A trial's problem (a pointer into its job spec) as a problem of the sweep request, saying which trial and values. */
export function trialProblem(index: number, parameters: TrialParameters, problem: { pointer: string; detail: string }): FieldError {
  const values = Object.entries(parameters)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join(', ');
  return {
    pointer: sweepPointer(problem.pointer, Object.keys(parameters)),
    in: 'body',
    detail: `makes trial ${index} (${values}) invalid: ${problem.pointer} ${problem.detail}`,
  };
}

/** One complaint per place: a bad value usually breaks many trials the same way. */
export function firstPerPointer(errors: readonly FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => !seen.has(e.pointer) && seen.add(e.pointer));
}

/** The trial spec's schema errors, as the API's validation would name them. */
function schemaProblems(spec: unknown): { pointer: string; detail: string }[] {
  return [...Value.Errors(JobSpec, spec)].map((e) => ({ pointer: e.path || '/', detail: e.message.replace(/^Expected/, 'expected') }));
}

export function planTrials(spec: SweepSpec, seed: number): { trials: PlannedTrial[] } | { errors: FieldError[] } {
  const space = spaceProblems(spec);
  if (space.length > 0) return { errors: space };
  const pointers = Object.keys(spec.parameters);
  const errors: FieldError[] = [];
  const targets: { pointer: string; tokens: string[] }[] = [];
  for (const pointer of pointers) {
    const tokens = parsePointer(pointer);
    if (tokens === null || tokens.length === 0)
      errors.push({
        pointer: parameterPointer(pointer),
        in: 'body',
        detail: 'is not a JSON pointer to a field of the template (RFC 6901, e.g. /method/weight)',
      });
    else targets.push({ pointer, tokens });
  }
  if (errors.length > 0) return { errors };

  const size = gridSize(spec.parameters);
  const { maxTrials } = spec;
  if (spec.algorithm === 'random' && maxTrials === undefined)
    return { errors: [{ pointer: '/maxTrials', in: 'body', detail: 'is required for a random search' }] };
  if (spec.algorithm === 'grid' && maxTrials !== undefined && maxTrials < size) {
    return {
      errors: [
        {
          pointer: '/maxTrials',
          in: 'body',
          detail: `is ${maxTrials}, but the grid has ${size} points; expected at least ${size}, or fewer values, or algorithm random`,
        },
      ],
    };
  }
  const count = spec.algorithm === 'random' && maxTrials !== undefined ? maxTrials : size;
  if (count > MAX_TRIALS)
    return { errors: [{ pointer: '/parameters', in: 'body', detail: `make a grid of ${size} points; expected at most ${MAX_TRIALS} trials` }] };

  const trials: PlannedTrial[] = [];
  trialParameters(spec, { seed, count }).forEach((parameters, index) => {
    let doc: unknown = structuredClone(spec.template);
    for (const { pointer, tokens } of targets) {
      const set = setAt(doc, tokens, parameters[pointer]);
      if (!set.ok) return errors.push({ pointer: parameterPointer(pointer), in: 'body', detail: set.detail });
      doc = set.doc;
    }
    doc = Value.Default(JobSpec, doc);
    const bad = schemaProblems(doc);
    if (bad.length > 0) return errors.push(...bad.map((b) => trialProblem(index, parameters, b)));
    const trialSpec = doc as JobSpec;
    const rules = specProblems(trialSpec);
    if (rules.length > 0) return errors.push(...rules.map((r) => trialProblem(index, parameters, r)));
    trials.push({ parameters, spec: trialSpec });
  });
  if (errors.length > 0) return { errors: firstPerPointer(errors) };
  return { trials };
}
