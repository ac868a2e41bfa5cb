import { Type, type Static } from '@sinclair/typebox';
import { Metrics } from './common.js';

export const Activation = Type.Union(
  ['linear', 'relu', 'tanh', 'sigmoid', 'elu', 'selu'].map((a) => Type.Literal(a)),
  { description: 'activation of the hidden layers; `linear` is the seed example' },
);

export const MlpArchitecture = Type.Object(
  {
    kind: Type.Literal('mlp'),
    hidden: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), { maxItems: 8, default: [128], description: 'units of each hidden dense layer' }),
    activation: Type.Optional(Activation),
  },
  { additionalProperties: false },
);
export const Architecture = MlpArchitecture;
export type Architecture = Static<typeof Architecture>;

export const Optimizer = Type.Object(
  {
    name: Type.Union([Type.Literal('sgd'), Type.Literal('adam')]),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 10 }),
    momentum: Type.Optional(Type.Number({ minimum: 0, maximum: 0.9999, description: 'sgd only; 0 is plain SGD' })),
    beta1: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'adam only' })),
    beta2: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'adam only' })),
    epsilon: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'adam only' })),
  },
  { additionalProperties: false },
);
export type Optimizer = Static<typeof Optimizer>;

export const Hyperparameters = Type.Object(
  {
    epochs: Type.Integer({ minimum: 1, maximum: 1000 }),
    batchSize: Type.Integer({ minimum: 1, maximum: 8192 }),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, description: 'seeds initialisation and shuffling' })),
    optimizer: Optimizer,
  },
  { additionalProperties: false },
);
export type Hyperparameters = Static<typeof Hyperparameters>;

export const JobType = Type.Union([Type.Literal('train'), Type.Literal('finetune')]);
export type JobType = Static<typeof JobType>;

export const Strategy = Type.Object(
  { kind: Type.Literal('full', { description: 'train every weight of the base model' }) },
  { additionalProperties: false },
);

export const JobSpec = Type.Object(
  {
    type: JobType,
    model: Type.Object(
      {
        architecture: Type.Optional(Architecture),
        base: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'id of the model to start from (finetune)' })),
      },
      { additionalProperties: false },
    ),
    strategy: Type.Optional(Strategy),
    data: Type.Object(
      {
        train: Type.String({ minLength: 1, maxLength: 64, description: 'dataset id' }),
        validation: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        test: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      },
      { additionalProperties: false },
    ),
    hyperparameters: Hyperparameters,
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), { maxProperties: 32 })),
  },
  {
    $id: 'JobSpec',
    additionalProperties: false,
    examples: [
      {
        type: 'train',
        model: { architecture: { kind: 'mlp', hidden: [128], activation: 'linear' } },
        data: { train: 'ds_...', test: 'ds_...' },
        hyperparameters: { epochs: 1, batchSize: 64, seed: 1, optimizer: { name: 'sgd', learningRate: 0.001, momentum: 0.9 } },
      },
    ],
  },
);
export type JobSpec = Static<typeof JobSpec>;

export const JOB_STATUSES = ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const JobStatus = Type.Unsafe<JobStatus>({ type: 'string', enum: [...JOB_STATUSES] });
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export const Progress = Type.Object({
  epoch: Type.Integer({ description: 'current epoch, from 1' }),
  epochs: Type.Integer(),
  step: Type.Integer({ description: 'step within the epoch' }),
  steps: Type.Integer({ description: 'steps per epoch' }),
});
export type Progress = Static<typeof Progress>;

export const JobError = Type.Object({
  code: Type.String(),
  message: Type.String(),
  param: Type.Optional(Type.String({ description: 'JSON pointer into the spec, when a field is to blame' })),
});
export type JobError = Static<typeof JobError>;

export const Job = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('job'),
    type: JobType,
    status: JobStatus,
    spec: JobSpec,
    progress: Type.Union([Progress, Type.Null()]),
    metrics: Type.Union([Metrics, Type.Null()], { description: 'latest per-epoch metrics' }),
    result: Type.Union([Type.Object({ modelId: Type.String(), metrics: Metrics }), Type.Null()]),
    error: Type.Union([JobError, Type.Null()]),
    attempt: Type.Integer({ description: 'how many times the job has been started' }),
    backend: Type.Union([Type.String(), Type.Null()], { description: 'tfjs backend that ran it: tensorflow, wasm or cpu' }),
    cancelRequested: Type.Boolean({ description: 'a cancel was asked for; a running job stops within one batch' }),
    pauseRequested: Type.Boolean({ description: 'a pause was asked for; a running job checkpoints and stops within one batch' }),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'Job' },
);
export type Job = Static<typeof Job>;

export const JobListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    after: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
    status: Type.Optional(JobStatus),
    type: Type.Optional(JobType),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuery>;
