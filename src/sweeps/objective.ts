/**
 * The metrics a sweep may rank its trials by: the one list, and the one function that checks an
 * objective against a template. Epoch metrics are reported at the end of each epoch (and so can
 * drive early termination); final ones only when the job ends. A trial's value is always the one
 * its finished model has, from the job's result metrics (the last epoch's, or with earlyStopping
 * the best epoch's, plus the final evaluations).
 */
import type { FieldError } from '../field-error.js';
import type { JobSpec } from '../schemas/job.js';
import type { SweepGoal, SweepSpec } from '../schemas/sweep.js';
import { VALIDATORS, type ValidatorInfo } from '../jobs/validators.js';

interface MetricInfo {
  goal: SweepGoal;
  when: 'epoch' | 'final';
  /** why the template's job would not report it, or null when it does */
  missing(spec: JobSpec): string | null;
}

const always = () => null;
const needs = (role: keyof JobSpec['data'], what: string) => (spec: JobSpec) => (spec.data[role] === undefined ? `needs data.${role} (${what})` : null);
const needsMethod = (kind: string) => (spec: JobSpec) => (spec.method?.kind === kind ? null : `is reported by method ${kind} only`);
const adaptation = (spec: JobSpec) => (spec.type === 'domain_adaptation' ? null : 'is reported by domain_adaptation jobs only');

/** Why a job would not report a validator: what it reads (src/jobs/validators.ts) against what the spec gives. */
const validatorMissing =
  ({ needs: what }: ValidatorInfo) =>
  (spec: JobSpec): string | null => {
    if (what.includes('target') && (spec.type !== 'domain_adaptation' || spec.data.target === undefined))
      return 'is reported by domain_adaptation jobs with data.target only (computed on its unlabelled data)';
    if (what.includes('validation') && spec.data.validation === undefined) return 'needs data.validation (a labelled source validation set)';
    return null;
  };

/** The label-free validators (src/jobs/validators.ts VALIDATORS) are epoch metrics like any other. */
export const OBJECTIVE_METRICS: Record<string, MetricInfo> = {
  loss: { goal: 'minimize', when: 'epoch', missing: always },
  accuracy: { goal: 'maximize', when: 'epoch', missing: always },
  valLoss: { goal: 'minimize', when: 'epoch', missing: needs('validation', 'a labelled validation set') },
  ...Object.fromEntries(Object.entries(VALIDATORS).map(([name, info]) => [name, { goal: info.goal, when: 'epoch', missing: validatorMissing(info) }])),
  coral: { goal: 'minimize', when: 'epoch', missing: needsMethod('coral') },
  mmd: { goal: 'minimize', when: 'epoch', missing: needsMethod('mmd') },
  testAccuracy: { goal: 'maximize', when: 'final', missing: needs('test', 'a labelled test set') },
  testLoss: { goal: 'minimize', when: 'final', missing: needs('test', 'a labelled test set') },
  targetAccuracy: { goal: 'maximize', when: 'final', missing: needs('targetTest', "the target domain's labelled test set") },
  targetLoss: { goal: 'minimize', when: 'final', missing: needs('targetTest', "the target domain's labelled test set") },
  sourceAccuracy: { goal: 'maximize', when: 'final', missing: adaptation },
  sourceLoss: { goal: 'minimize', when: 'final', missing: adaptation },
};

/** The objective's goal, given or the metric's own. */
export const goalOf = (objective: SweepSpec['objective']): SweepGoal => objective.goal ?? OBJECTIVE_METRICS[objective.metric]?.goal ?? 'maximize';

/** Whether every trial's job will report the objective, and early termination can watch it. */
export function objectiveProblems(spec: Pick<SweepSpec, 'objective' | 'earlyTermination'>, trialSpecs: readonly JobSpec[]): FieldError[] {
  const { metric } = spec.objective;
  const info = OBJECTIVE_METRICS[metric];
  if (!info)
    return [{ pointer: '/objective/metric', in: 'body', detail: `is ${JSON.stringify(metric)}; expected one of ${Object.keys(OBJECTIVE_METRICS).join(', ')}` }];
  const errors: FieldError[] = [];
  const why = trialSpecs.map((s) => info.missing(s)).find((m) => m !== null);
  if (why) errors.push({ pointer: '/objective/metric', in: 'body', detail: `is ${metric}, which ${why}` });
  if (spec.earlyTermination && info.when !== 'epoch') {
    errors.push({
      pointer: '/earlyTermination',
      in: 'body',
      detail: `needs an objective reported every epoch; ${metric} is reported when the job ends (epoch metrics: ${epochMetrics().join(', ')})`,
    });
  }
  return errors;
}

const epochMetrics = () =>
  Object.entries(OBJECTIVE_METRICS)
    .filter(([, i]) => i.when === 'epoch')
    .map(([m]) => m);
