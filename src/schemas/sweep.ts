import { Type, type Static } from '@sinclair/typebox';
import { JobSpec, JobStatus } from './job.js';
import { VALIDATOR_NAMES } from '../jobs/validators.js';

/** A sweep runs at most this many trials: each is a job, checked and estimated when the sweep is created. */
export const MAX_TRIALS = 100;
/** A sweep runs at most this many trials at once (each also counts toward MAX_ACTIVE_JOBS_PER_TENANT). */
export const MAX_PARALLEL = 16;

export const ParameterRange = Type.Object(
  {
    min: Type.Number(),
    max: Type.Number(),
    scale: Type.Optional(
      Type.Union([Type.Literal('linear'), Type.Literal('log')], {
        description: 'how values are spread between min and max; `log` needs min > 0. Default linear',
      }),
    ),
    type: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('int')], { description: '`int` rounds each value to an integer; default float' })),
    gridPoints: Type.Optional(
      Type.Integer({ minimum: 2, maximum: 50, description: 'grid only: how many evenly spread values (on the scale) from min to max; default 3' }),
    ),
  },
  { additionalProperties: false, description: 'a number from min to max (both included)' },
);
export type ParameterRange = Static<typeof ParameterRange>;

export const ParameterChoice = Type.Object(
  {
    values: Type.Array(Type.Unknown(), {
      minItems: 1,
      maxItems: MAX_TRIALS,
      description: 'the values to try, any JSON: numbers, strings, or whole objects such as {"kind": "coral"}',
    }),
  },
  { additionalProperties: false, description: 'one of a list of values' },
);
export type ParameterChoice = Static<typeof ParameterChoice>;

export const Parameter = Type.Union([ParameterRange, ParameterChoice]);
export type Parameter = Static<typeof Parameter>;

export const SweepGoal = Type.Union([Type.Literal('maximize'), Type.Literal('minimize')]);
export type SweepGoal = Static<typeof SweepGoal>;

export const SweepObjective = Type.Object(
  {
    metric: Type.String({
      minLength: 1,
      maxLength: 64,
      description: `what ranks the trials: an epoch metric of the job (e.g. a label-free validator of a domain_adaptation job: ${VALIDATOR_NAMES.map((v) => `\`${v}\``).join(', ')}; or \`valLoss\`, \`loss\`, or a method's signal such as \`coral\`) or a final one (\`testAccuracy\`, \`targetAccuracy\`, ...), whichever the template's job reports; a trial's value is the one its finished model has`,
    }),
    goal: Type.Optional(
      Type.Union([Type.Literal('maximize'), Type.Literal('minimize')], {
        description: "default: the metric's natural direction (maximize an accuracy, minimize a loss)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type SweepObjective = Static<typeof SweepObjective>;

export const MedianStopping = Type.Object(
  {
    kind: Type.Literal('median', {
      description:
        "`median`: the median stopping rule (Golovin et al., Google Vizier, 2017): a trial whose best objective by epoch e is worse than the median of the other trials' running averages at epoch e is stopped",
    }),
    minTrials: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_TRIALS,
        description: 'how many other trials must have reported epoch e before a trial is judged there; default 3',
      }),
    ),
    graceEpochs: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'epochs a trial runs before it can be stopped; default 1' })),
  },
  { additionalProperties: false },
);

export const Asha = Type.Object(
  {
    kind: Type.Literal('asha', {
      description:
        "`asha`: asynchronous successive halving (Li et al., MLSys 2020), as an early-stopping rule (as Ray Tune's ASHAScheduler): rungs at epochs minEpochs x reductionFactor^k; " +
        'a trial reaching a rung goes on only if its objective there is in the top 1/reductionFactor of the values the other trials had at that rung, else it is stopped; a trial no other has reached the rung before goes on',
    }),
    minEpochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'the first rung: epochs every trial runs; default 1' })),
    reductionFactor: Type.Optional(
      Type.Integer({ minimum: 2, maximum: 16, description: 'eta: the rungs are this factor apart and keep the best 1/eta at each; default 3' }),
    ),
  },
  { additionalProperties: false },
);

export const EarlyTermination = Type.Union([MedianStopping, Asha], {
  description: 'needs an objective that is an epoch metric. A stopped trial ends `cancelled` and the sweep notes why',
});
export type EarlyTermination = Static<typeof EarlyTermination>;

export const SweepSpec = Type.Object(
  {
    template: JobSpec,
    parameters: Type.Record(Type.String({ pattern: '^/' }), Parameter, {
      minProperties: 1,
      maxProperties: 16,
      description:
        "what to vary, keyed by a JSON pointer into `template` (e.g. `/method/weight`, `/hyperparameters/optimizer/learningRate`, `/method`); its parent must be in the template. Every trial's spec must pass the same checks as a job create",
    }),
    objective: SweepObjective,
    algorithm: Type.Union([Type.Literal('grid'), Type.Literal('random')], {
      description:
        "`grid`: every combination of the parameters' values (choices, or ranges at gridPoints), in order. `random`: maxTrials draws, seeded by `seed`",
    }),
    maxTrials: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_TRIALS,
        description: "random: required. grid: default the grid's size, and a smaller value than that is refused (a cut grid is biased)",
      }),
    ),
    maxParallel: Type.Integer({ minimum: 1, maximum: MAX_PARALLEL, default: 2, description: 'trials running (or queued) at once' }),
    seed: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2 ** 31 - 1,
        description: 'seeds the random search: the same seed draws the same trials. Default: drawn, and shown on the sweep',
      }),
    ),
    earlyTermination: Type.Optional(EarlyTermination),
    webhook: Type.Optional(
      Type.Object(
        {
          url: Type.String({
            minLength: 1,
            maxLength: 2048,
            description: "called with POST when the sweep ends, as a job's webhook (same address rules and signature)",
          }),
          secret: Type.Optional(
            Type.String({ minLength: 8, maxLength: 256, description: "signs each delivery, as a job's webhook secret; write-only: no answer carries it" }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), { maxProperties: 32 })),
  },
  {
    $id: 'SweepSpec',
    additionalProperties: false,
    examples: [
      {
        template: {
          type: 'domain_adaptation',
          model: { base: 'mdl_...' },
          method: { kind: 'dann', weight: 1 },
          data: { source: 'ds_...', target: 'ds_...', validation: 'ds_...' },
          hyperparameters: { epochs: 5, batchSize: 64, optimizer: { name: 'adam', learningRate: 0.001 } },
        },
        parameters: {
          '/method': { values: [{ kind: 'dann' }, { kind: 'coral' }, { kind: 'mmd' }] },
          '/method/weight': { min: 0.01, max: 10, scale: 'log', gridPoints: 3 },
        },
        objective: { metric: 'valAccuracy', goal: 'maximize' },
        algorithm: 'grid',
        maxParallel: 2,
      },
    ],
  },
);
export type SweepSpec = Static<typeof SweepSpec>;

export const SWEEP_STATUSES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export type SweepStatus = (typeof SWEEP_STATUSES)[number];
export const SweepStatus = Type.Unsafe<SweepStatus>({
  type: 'string',
  enum: [...SWEEP_STATUSES],
  description: '`running` until every trial has ended; then `succeeded` when one trial at least has an objective value, else `failed`; `cancelled` on request',
});

export const TrialStatus = Type.Union([Type.Literal('pending'), JobStatus], { description: "`pending`: not launched yet; then its job's status" });

export const ObjectiveValue = Type.Object({
  metric: Type.String(),
  value: Type.Number(),
  epoch: Type.Union([Type.Integer(), Type.Null()], {
    description: "the epoch whose weights the trial's model keeps (its last, or its best with earlyStopping)",
  }),
});

export const Trial = Type.Object({
  index: Type.Integer({ description: 'from 0, in the order trials are launched' }),
  jobId: Type.Union([Type.String(), Type.Null()], { description: "the trial's job, once launched" }),
  parameters: Type.Record(Type.String(), Type.Unknown(), { description: 'the value of each parameter, by pointer' }),
  status: TrialStatus,
  objective: Type.Union([ObjectiveValue, Type.Null()], { description: "the objective of the trial's finished model; null until it has succeeded" }),
  latest: Type.Union([Type.Object({ epoch: Type.Integer(), value: Type.Number() }), Type.Null()], {
    description: 'the objective at the latest epoch reported (epoch metrics only)',
  }),
  stopped: Type.Union([Type.Object({ epoch: Type.Integer(), reason: Type.String() }), Type.Null()], {
    description: "stopped early by the sweep's earlyTermination rule",
  }),
});
export type Trial = Static<typeof Trial>;

export const Sweep = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('sweep'),
    status: SweepStatus,
    spec: SweepSpec,
    goal: SweepGoal,
    trials: Type.Array(Trial),
    best: Type.Union(
      [
        Type.Object({
          index: Type.Integer(),
          jobId: Type.String(),
          parameters: Type.Record(Type.String(), Type.Unknown()),
          objective: ObjectiveValue,
          reason: Type.String({
            description:
              'why this trial: the metric, its value and epoch, the goal, and how many trials it was ranked against; the trials passed over because their model is no better than chance on the source validation (valAccuracy within 0.05 of 1/classes), unless every trial is; with errorBound at 1 or more on the best trial, also that the bound says nothing there (no trial is shown to adapt)',
          }),
        }),
        Type.Null(),
      ],
      {
        description:
          "the trial with the best objective so far, among those that finished and whose model does better than chance on the source validation (when every one is at chance, among all); for errorBound, of the trials within one standard error (errorBoundStandardError, the best trial's) of the lowest, the one with the lowest valLoss (Breiman's one-standard-error rule)",
      },
    ),
    validatorPicks: Type.Array(
      Type.Object({
        validator: Type.String({ description: `a label-free validator the trials report: ${VALIDATOR_NAMES.join(', ')}` }),
        index: Type.Integer(),
        jobId: Type.String(),
        value: Type.Number({ description: "the validator's value for that trial's finished model" }),
      }),
      {
        description:
          "the trial each label-free validator would pick among the finished trials, by the rule `best` follows for it (models at chance passed over; errorBound's one-standard-error rule), whatever the objective: where they disagree with `best`, the choice rests on which validator to trust on this shift (docs/methods.md, 'When to prefer which method'). Empty when the trials report none (not domain_adaptation jobs with data.target)",
      },
    ),
    estimate: Type.Object(
      {
        trials: Type.Integer(),
        flops: Type.Number({ description: "the sum of every trial's estimated work, held against SWEEP_MAX_FLOPS" }),
        maxTrialMemoryBytes: Type.Integer({ description: 'the largest estimated peak memory of one trial' }),
      },
      { description: "what the whole sweep costs, from each trial's job estimate" },
    ),
    createdAt: Type.String({ format: 'date-time' }),
    finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'Sweep' },
);
export type Sweep = Static<typeof Sweep>;

export const SweepListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 50, default: 20 }),
    after: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'cursor: the nextCursor of the previous page' })),
    status: Type.Optional(SweepStatus),
  },
  { additionalProperties: false },
);
export type SweepListQuery = Static<typeof SweepListQuery>;

export const SweepEvent = Type.Object(
  {
    seq: Type.Integer({ description: 'per-sweep sequence number from 1, gap-free; the SSE id' }),
    type: Type.Union(
      ['status', 'trial', 'log'].map((t) => Type.Literal(t)),
      { description: "`status`: the sweep's; `trial`: a trial launched, ended or stopped; `log`: webhook deliveries and notes" },
    ),
    createdAt: Type.String({ format: 'date-time' }),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { $id: 'SweepEvent' },
);
