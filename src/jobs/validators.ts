/**
 * The epoch metrics a domain-adaptation run can be judged by without target labels (issue 14),
 * and which way each is better. Pure and import-free: the spec schema (earlyStopping.monitor),
 * the spec rules, the training child and sweeps (objectives by metric name) all read this table.
 * Definitions and sources: docs/methods.md, "Validators"; the maths: workers/training/validators.ts.
 */

export type Goal = 'minimize' | 'maximize';

/** What a validator reads: the target's unlabelled data, the source validation set, or both. */
export type ValidatorNeeds = 'target' | 'validation' | 'target+validation';

export interface ValidatorInfo {
  goal: Goal;
  needs: ValidatorNeeds;
  /** one line for the OpenAPI description and the docs */
  summary: string;
  /** for a bound on an error: the value from which it bounds nothing (an error is at most 1), said beside a sweep's best trial */
  vacuousFrom?: number;
  /**
   * for a validator measured with a standard error the job reports beside it (as metric
   * `standardError`): a sweep picks, among the trials within one standard error of the best
   * (Breiman's one-standard-error rule), the one best by `by`, a finer measure of the same thing
   */
  withinStandardError?: { standardError: string; by: 'valLoss' };
}

export const VALIDATORS = {
  entropy: { goal: 'minimize', needs: 'target', summary: 'mean entropy of the target predictions' },
  im: { goal: 'maximize', needs: 'target', summary: 'information maximisation: entropy of the mean target prediction minus the mean entropy' },
  snd: { goal: 'maximize', needs: 'target', summary: 'soft neighbourhood density of the target predictions (Saito et al. 2021)' },
  mixval: {
    goal: 'maximize',
    needs: 'target',
    summary:
      "MixVal's inter-cluster probe (Hu et al. 2023): of target pairs predicted as different classes, mixed 0.55 : 0.45, the share the model predicts as the dominant one's class",
  },
  dev: {
    goal: 'minimize',
    needs: 'target+validation',
    summary: 'deep embedded validation: source validation loss importance-weighted toward the target by a domain classifier (You et al. 2019)',
  },
  valAccuracy: { goal: 'maximize', needs: 'validation', summary: 'accuracy on data.validation (source)' },
  errorBound: {
    goal: 'minimize',
    needs: 'target+validation',
    summary:
      "source validation error plus half the proxy A-distance between source and target features (a linear domain classifier's cross-validated accuracy, balanced across the domains): the measurable part of Ben-David et al.'s bound on the target error",
    vacuousFrom: 1,
    // its source term, the error on data.validation, is a proportion over few labels at times (50 in the few-label sweep: ±0.05)
    withinStandardError: { standardError: 'errorBoundStandardError', by: 'valLoss' },
  },
} as const satisfies Record<string, ValidatorInfo>;
export type ValidatorName = keyof typeof VALIDATORS;
export const VALIDATOR_NAMES = Object.keys(VALIDATORS) as ValidatorName[];

/** What earlyStopping may watch: the validators and the source validation loss. */
export const MONITORS = {
  valLoss: { goal: 'minimize', needs: 'validation', summary: 'mean cross-entropy on data.validation (source)' },
  ...VALIDATORS,
} as const satisfies Record<string, ValidatorInfo>;
export type MonitorName = keyof typeof MONITORS;
export const MONITOR_NAMES = Object.keys(MONITORS) as MonitorName[];

/** The monitors that read `what` (the target's unlabelled data, or data.validation), in the table's order: for the schemas' descriptions. */
export function monitorsReading(what: 'target' | 'validation'): MonitorName[] {
  return MONITOR_NAMES.filter((m) => (MONITORS[m].needs as string).includes(what));
}

/** Whether `value` beats `best` by more than `minDelta` in the direction of `goal`. */
export function improves(goal: Goal, value: number, best: number, minDelta: number): boolean {
  return goal === 'minimize' ? value < best - minDelta : value > best + minDelta;
}

/**
 * Target examples (and source validation examples for dev) the validators read at each epoch's
 * end: a fixed seeded sample, the same every epoch so that epochs compare. Bounds their cost
 * (SND's similarity matrix is sample²) whatever the target's size.
 */
export const VALIDATOR_SAMPLE_DEFAULT = 1000;
export const VALIDATOR_SAMPLE_MAX = 4000;

/**
 * SND's rows per block (workers/training/validators.ts): its similarities, softmax and entropies
 * are computed this many rows of the sample at a time, so that its peak is some ten
 * block × sample arrays (41 MB at the maximum sample, measured) instead of nine sample² ones (613 MB).
 */
export const SND_BLOCK_ROWS = 256;
/** SND's peak in float32 values per cell of one block, with a margin (measured: 10.1 at 1000, 1500 and 4000 rows; test/workers/training/validators.test.ts). */
export const SND_VALUES_PER_BLOCK_CELL = 11;

/**
 * The domain classifiers of dev and errorBound (workers/training/validators.ts), trained at each
 * epoch's end on the source and target samples' features; here so that the job's estimate
 * (estimate.ts) counts the same work. Each is tried with every L2 penalty of `decays`, the best
 * kept (as pytorch-adapt picks its weight decay); dev's has `hidden` units, errorBound's probe none
 * (linear) and its accuracy cross-validated over `linearFolds` folds: one 20% hold-out of
 * 2 × validatorSample rows (200 at 500) gave it a standard error of about 3 points, ±0.07 on the
 * bound, more than the gaps between the trials it has to rank (docs/methods.md).
 */
export const DOMAIN_CLASSIFIERS = { decays: [1e-1, 1e-2, 1e-3], hidden: 32, steps: 100, learningRate: 0.01, linearFolds: 5 } as const;
