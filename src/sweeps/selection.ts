/**
 * Reading the trials: each one's objective, the best of them and why, and the early-termination
 * rules. The median stopping rule (Golovin et al., "Google Vizier", KDD 2017, section 3.2.2): a
 * trial is stopped at epoch e when its best value up to e is worse than the median, over the other
 * trials that reached e, of their running averages up to e. ASHA (Li et al., "A System for
 * Massively Parallel Hyperparameter Tuning", MLSys 2020) as a stopping rule, as Ray Tune's
 * ASHAScheduler applies it: at each rung (minEpochs x eta^k epochs) a trial goes on only if its
 * value there is in the top 1/eta of the other trials' values at that rung. Pure: the store hands
 * in what the jobs reported.
 */
import { MONITORS, VALIDATOR_NAMES, VALIDATORS, type ValidatorInfo, type ValidatorName } from '../jobs/validators.js';
import type { SweepGoal } from '../schemas/sweep.js';

export interface ObjectiveValue {
  metric: string;
  value: number;
  epoch: number | null;
}

const better = (goal: SweepGoal, a: number, b: number) => (goal === 'maximize' ? a > b : a < b);

/** The objective of a finished trial: its result metrics, which describe the model it keeps. */
export function trialObjective(metric: string, result: { metrics: Record<string, unknown> } | null, lastEpoch: number | null): ObjectiveValue | null {
  const value = result?.metrics[metric];
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  const best = result!.metrics.bestEpoch;
  return { metric, value, epoch: typeof best === 'number' ? best : lastEpoch };
}

export interface Ranked {
  index: number;
  objective: ObjectiveValue | null;
}

/** How far above chance (1 / the number of classes) a model's source validation accuracy must be to be picked. */
export const CHANCE_MARGIN = 0.05;

/**
 * Whether a finished model is no better than chance on the labelled source validation: `valAccuracy`
 * within CHANCE_MARGIN of 1/K. A model collapsed to one class has target features no domain classifier
 * tells apart and confident, agreeing predictions, so label-free validators can rank it first (`snd`
 * does in the sweeps of docs/benchmarks.md; `errorBound` did while it read a one-hidden-layer domain
 * classifier), yet it has learnt nothing. False when the job reported no validation accuracy or
 * class list.
 */
export function atChance(metrics: Record<string, unknown> | undefined): boolean {
  const accuracy = metrics?.valAccuracy;
  const classes = metrics?.classes;
  if (typeof accuracy !== 'number' || !Array.isArray(classes) || classes.length < 2) return false;
  return accuracy < 1 / classes.length + CHANCE_MARGIN;
}

/** How bestTrial chooses, besides the objective. */
export interface Selection<T> {
  /** trials no better than chance, passed over unless every trial is */
  atChance: (trial: T) => boolean;
  /**
   * Breiman's one-standard-error rule, for an objective measured with a standard error: among the
   * trials whose value is within the best one's standard error of it, the one best by `by`
   */
  withinStandardError?: {
    standardError: (trial: T) => number | undefined;
    by: { metric: string; goal: SweepGoal; value: (trial: T) => number | undefined };
  };
}

/**
 * How a sweep on `metric` chooses among its trials, from each trial's metrics (a finished job's
 * result metrics): models at chance passed over, and for a validator measured with a standard
 * error (src/jobs/validators.ts: errorBound) the one-standard-error rule. The one home of that
 * choice, for the sweep's `best` (src/store/sweeps.ts) and for the benchmark's picks.
 */
export function selectionFor<T>(metric: string, metricsOf: (trial: T) => Record<string, unknown> | undefined): Selection<T> {
  const number = (trial: T, name: string) => {
    const v = metricsOf(trial)?.[name];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  };
  const rule = (VALIDATORS as Record<string, ValidatorInfo>)[metric]?.withinStandardError;
  return {
    atChance: (t) => atChance(metricsOf(t)),
    ...(rule && {
      withinStandardError: {
        standardError: (t: T) => number(t, rule.standardError),
        by: { metric: rule.by, goal: MONITORS[rule.by].goal, value: (t: T) => number(t, rule.by) },
      },
    }),
  };
}

/**
 * The best trial (ties go to the earlier one) and a sentence saying why, or null when none has a value.
 * Trials `atChance` says are no better than chance are passed over, unless every trial is. With
 * `withinStandardError`, the trials within the best one's standard error of its value are told
 * apart by a finer measure instead: the objective cannot.
 */
export function bestTrial<T extends Ranked>(
  trials: readonly T[],
  goal: SweepGoal,
  opts: Selection<T> = { atChance: () => false },
): { trial: T & { objective: ObjectiveValue }; reason: string } | null {
  const reported = trials.filter((t): t is T & { objective: ObjectiveValue } => t.objective !== null);
  if (reported.length === 0) return null;
  const chance = reported.filter((t) => opts.atChance(t));
  const learnt = reported.filter((t) => !chance.includes(t));
  const scored = learnt.length > 0 ? learnt : reported;
  const first = scored.reduce((a, b) => (better(goal, b.objective.value, a.objective.value) ? b : a));
  const close = opts.withinStandardError && withinStandardError(scored, first, goal, opts.withinStandardError);
  const top = close?.trial ?? first;
  const o = top.objective;
  const runnerUp = scored
    .filter((t) => t !== top)
    .reduce<(T & { objective: ObjectiveValue }) | null>((a, b) => (a === null || better(goal, b.objective.value, a.objective.value) ? b : a), null);
  const at = o.epoch === null ? '' : ` at epoch ${o.epoch}`;
  const against = runnerUp ? `; the next best, trial ${runnerUp.index}, has ${runnerUp.objective.value}` : '';
  const passedOver =
    chance.length === 0
      ? ''
      : learnt.length === 0
        ? `; every trial's model is no better than chance on the source validation (valAccuracy within ${CHANCE_MARGIN} of 1/classes)`
        : `; passed over as no better than chance on the source validation (valAccuracy within ${CHANCE_MARGIN} of 1/classes): trial${chance.length === 1 ? '' : 's'} ${chance.map((t) => t.index).join(', ')}`;
  const lead = close
    ? close.reason
    : `trial ${top.index} has the ${goal === 'maximize' ? 'highest' : 'lowest'} ${o.metric} (${o.value}${at}) of the ${scored.length} trials that reported it${against}`;
  // a bound says nothing when even the lowest, not only the pick, is 1 or more
  return { trial: top, reason: `${lead}${passedOver}${vacuity(first.objective, goal)}` };
}

/** What a validator's pick reads of each trial: its finished value of a metric (null when it has none) and its metrics. */
export interface TrialReadings<T> {
  objective: (trial: T, metric: string) => ObjectiveValue | null;
  metrics: (trial: T) => Record<string, unknown> | undefined;
}

/** The trial `validator` picks, by bestTrial's rule for it (what a sweep with it as objective selects), or null when no trial reports it. */
export function validatorPick<T extends { index: number }>(
  trials: readonly T[],
  validator: ValidatorName,
  o: TrialReadings<T>,
): { trial: T; value: number } | null {
  const ranked = trials.map((trial) => ({ index: trial.index, trial, objective: o.objective(trial, validator) }));
  const pick = bestTrial(
    ranked,
    VALIDATORS[validator].goal,
    selectionFor(validator, (r: (typeof ranked)[number]) => o.metrics(r.trial)),
  );
  return pick === null ? null : { trial: pick.trial.trial, value: pick.trial.objective.value };
}

/**
 * The trial each label-free validator the finished trials report would pick (the sweep's
 * `validatorPicks`): whatever the objective, a user without target labels sees whether the
 * validators agree with `best` (on the sweeps of docs/benchmarks.md, `errorBound` and `im` part
 * ways on the shifts where one of them misses the oracle).
 */
export function validatorPicks<T extends { index: number }>(
  trials: readonly T[],
  o: TrialReadings<T>,
): Array<{ validator: ValidatorName; trial: T; value: number }> {
  return VALIDATOR_NAMES.flatMap((validator) => {
    const pick = validatorPick(trials, validator, o);
    return pick === null ? [] : [{ validator, ...pick }];
  });
}

/**
 * The one-standard-error rule: the trials within `first`'s standard error of its value, and the
 * one of them best by the finer measure (ties to the earlier). Undefined when `first` reports no
 * standard error or none of those trials the finer measure.
 */
function withinStandardError<T extends Ranked & { objective: ObjectiveValue }>(
  scored: readonly T[],
  first: T,
  goal: SweepGoal,
  rule: NonNullable<Selection<T>['withinStandardError']>,
): { trial: T; reason: string } | undefined {
  const se = rule.standardError(first);
  if (se === undefined) return undefined;
  const { metric, goal: byGoal, value } = rule.by;
  const limit = goal === 'minimize' ? first.objective.value + se : first.objective.value - se;
  const close = scored.filter((t) => (goal === 'minimize' ? t.objective.value <= limit : t.objective.value >= limit));
  const measured = close.flatMap((t) => {
    const v = value(t);
    return v === undefined ? [] : [{ t, v }];
  });
  if (measured.length === 0) return undefined;
  const pick = measured.reduce((a, b) => (better(byGoal, b.v, a.v) ? b : a));
  const o = first.objective;
  const own = pick.t === first ? '' : `; its ${o.metric} is ${pick.t.objective.value}`;
  return {
    trial: pick.t,
    reason:
      `trial ${pick.t.index} has the ${byGoal === 'maximize' ? 'highest' : 'lowest'} ${metric} (${pick.v}) of the ${close.length} trial${close.length === 1 ? '' : 's'} ` +
      `within one standard error (${+se.toPrecision(3)}) of the ${goal === 'maximize' ? 'highest' : 'lowest'} ${o.metric} (trial ${first.index}, ${o.value}${o.epoch === null ? '' : ` at epoch ${o.epoch}`}), ` +
      `which ${o.metric} alone does not tell apart (Breiman's one-standard-error rule)${own}`,
  };
}

/**
 * A bound that bounds nothing on its best trial bounds nothing on any: the pick is then no evidence
 * that a trial adapts (on a shift no trial aligns, errorBound still picks one: docs/methods.md).
 */
function vacuity(o: ObjectiveValue, goal: SweepGoal): string {
  const info = (VALIDATORS as Record<string, { vacuousFrom?: number }>)[o.metric];
  if (info?.vacuousFrom === undefined || goal !== 'minimize' || o.value < info.vacuousFrom) return '';
  return `; but ${o.metric} is ${info.vacuousFrom} or more on every trial, so it bounds nothing here: the domain classifier tells source and target features apart on each, and no trial is shown to adapt`;
}

export interface MedianRule {
  goal: SweepGoal;
  minTrials: number;
  graceEpochs: number;
}

/**
 * Whether the trial whose objective by epoch is `values` (values[0] is epoch 1) should stop now,
 * at its latest epoch, against the others' curves; null to go on, else why.
 */
export function medianStop(values: readonly number[], others: readonly (readonly number[])[], rule: MedianRule): string | null {
  const epoch = values.length;
  if (epoch === 0 || epoch <= rule.graceEpochs) return null;
  const reached = others.filter((o) => o.length >= epoch);
  if (reached.length < rule.minTrials) return null;
  const averages = reached.map((o) => o.slice(0, epoch).reduce((a, b) => a + b, 0) / epoch).sort((a, b) => a - b);
  const mid = averages.length / 2;
  const median = averages.length % 2 === 1 ? averages[Math.floor(mid)] : (averages[mid - 1] + averages[mid]) / 2;
  const best = values.reduce((a, b) => (better(rule.goal, b, a) ? b : a));
  if (!better(rule.goal, median, best)) return null;
  return `its best value by epoch ${epoch}, ${+best.toPrecision(6)}, is ${rule.goal === 'maximize' ? 'below' : 'above'} the median ${+median.toPrecision(6)} of the running averages of ${reached.length} other trials at that epoch (median stopping rule)`;
}

export interface AshaRule {
  goal: SweepGoal;
  minEpochs: number;
  reductionFactor: number;
}

/** Whether `epoch` is a rung of the rule: minEpochs x reductionFactor^k for some k >= 0. */
export function isRung(epoch: number, rule: Pick<AshaRule, 'minEpochs' | 'reductionFactor'>): boolean {
  let rung = rule.minEpochs;
  while (rung < epoch) rung *= rule.reductionFactor;
  return rung === epoch;
}

/** The q-quantile of sorted values, interpolated linearly between ranks (numpy's default, as Ray Tune takes it). */
function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  return low + 1 < sorted.length ? sorted[low] + (sorted[low + 1] - sorted[low]) * (at - low) : sorted[low];
}

/**
 * ASHA at the trial's latest epoch: when it is a rung, the trial is stopped if its value there is
 * worse than the cutoff of the top 1/eta of the other trials' values at that rung (the values
 * they had when they reached it: their curves at that epoch). Judged once, on reaching the rung;
 * null to go on, else why.
 */
export function ashaStop(values: readonly number[], others: readonly (readonly number[])[], rule: AshaRule): string | null {
  const epoch = values.length;
  if (epoch === 0 || !isRung(epoch, rule)) return null;
  const atRung = others.filter((o) => o.length >= epoch).map((o) => o[epoch - 1]);
  if (atRung.length === 0) return null;
  const sorted = [...atRung].sort((a, b) => a - b);
  const keep = 1 / rule.reductionFactor;
  const cutoff = quantile(sorted, rule.goal === 'maximize' ? 1 - keep : keep);
  const value = values[epoch - 1];
  if (!better(rule.goal, cutoff, value)) return null;
  return `its value at epoch ${epoch} (a rung), ${+value.toPrecision(6)}, is ${rule.goal === 'maximize' ? 'below' : 'above'} ${+cutoff.toPrecision(6)}, the cutoff of the best 1/${rule.reductionFactor} of ${atRung.length} other trials at that rung (ASHA)`;
}
