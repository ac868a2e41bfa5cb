import { Type, type Static } from '@sinclair/typebox';
import { Augment } from './augment.js';
import { Metrics } from './common.js';
import { AdaptationMethod, Strategy } from './methods.js';
import { PREDICTION_FORMATS } from '../jobs/predictions-file.js';
import { MONITOR_NAMES, MONITORS, monitorsReading, VALIDATOR_SAMPLE_DEFAULT, VALIDATOR_SAMPLE_MAX } from '../jobs/validators.js';

export const Activation = Type.Union(
  ['linear', 'relu', 'tanh', 'sigmoid', 'elu', 'selu'].map((a) => Type.Literal(a)),
  { description: 'activation of the hidden layers; `linear` is the seed example' },
);

export const Architecture = Type.Object(
  {
    kind: Type.Union([Type.Literal('mlp'), Type.Literal('cnn')], {
      description:
        '`mlp`: dense layers. `cnn`: conv blocks (3x3 "same" convolution, optional batch norm, activation, 2x2 pooling), then dense layers; ' +
        'it needs image-like examples: featureShape [h, w, c], [h, w], or a square [n] (read as [sqrt n, sqrt n, 1], e.g. [784] as 28x28x1)',
    }),
    hidden: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), {
      maxItems: 8,
      default: [128],
      description: 'units of each hidden dense layer (for a cnn: the dense layers between the conv blocks and the logits)',
    }),
    activation: Type.Optional(Activation),
    batchNorm: Type.Optional(
      Type.Boolean({ description: 'batch normalisation after each hidden dense layer or convolution, before its activation; default false' }),
    ),
    filters: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 512 }), {
        minItems: 1,
        maxItems: 6,
        description: 'cnn only: filters of each conv block; default [16, 32]',
      }),
    ),
    kernelSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 11, description: 'cnn only: height and width of the convolution kernels; default 3' })),
    pooling: Type.Optional(
      Type.Union([Type.Literal('max'), Type.Literal('average'), Type.Literal('none')], {
        description: 'cnn only: 2x2 pooling after each conv block; default max',
      }),
    ),
  },
  { additionalProperties: false, description: 'a model built from scratch; layers are named conv_1, bn_1, pool_1, ..., flatten, dense_1, ..., logits' },
);
export type Architecture = Static<typeof Architecture>;

export const Optimizer = Type.Object(
  {
    name: Type.Union([Type.Literal('sgd'), Type.Literal('momentum'), Type.Literal('adam'), Type.Literal('rmsprop')], {
      description: "`sgd` (with an optional `momentum`, as PyTorch's SGD), `momentum` (SGD with momentum, default 0.9, optionally Nesterov), `adam`, `rmsprop`",
    }),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 10, description: 'the starting rate when `lrSchedule` is set' }),
    momentum: Type.Optional(
      Type.Number({ minimum: 0, maximum: 0.9999, description: 'sgd (default 0: plain SGD), momentum (default 0.9), rmsprop (default 0)' }),
    ),
    nesterov: Type.Optional(Type.Boolean({ description: 'momentum only; default false' })),
    beta1: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'adam only; default 0.9' })),
    beta2: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'adam only; default 0.999' })),
    epsilon: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: "adam, rmsprop; default the backend's epsilon (1e-7)" })),
    decay: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'rmsprop only: decay of the mean square; default 0.9' })),
    centered: Type.Optional(Type.Boolean({ description: 'rmsprop only; default false' })),
  },
  { additionalProperties: false },
);
export type Optimizer = Static<typeof Optimizer>;

export const LrSchedule = Type.Object(
  {
    kind: Type.Union([Type.Literal('step'), Type.Literal('cosine')], {
      description:
        '`step`: the rate is multiplied by `gamma` every `stepSize` epochs. `cosine`: the rate follows half a cosine from `learningRate` at the first step to `minLearningRate` at the last',
    }),
    stepSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'step only (required): epochs between two decays' })),
    gamma: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'step only: factor applied at each decay; default 0.1' })),
    minLearningRate: Type.Optional(Type.Number({ minimum: 0, maximum: 10, description: 'cosine only: the rate at the last step; default 0' })),
  },
  { additionalProperties: false },
);
export type LrSchedule = Static<typeof LrSchedule>;

export const EarlyStopping = Type.Object(
  {
    patience: Type.Integer({ minimum: 1, maximum: 1000, description: 'epochs without improvement of `monitor` after which training stops' }),
    monitor: Type.Optional(
      Type.Union(
        MONITOR_NAMES.map((m) => Type.Literal(m)),
        {
          description:
            'the epoch metric watched, default valLoss. ' +
            MONITOR_NAMES.map((m) => `\`${m}\` (${MONITORS[m].goal}s): ${MONITORS[m].summary}`).join('. ') +
            `. ${monitorsReading('target').join(', ')} need a domain_adaptation job with data.target (label-free: computed on its unlabelled data); ${monitorsReading('validation').join(', ')} need data.validation`,
        },
      ),
    ),
    minDelta: Type.Optional(Type.Number({ minimum: 0, maximum: 1e6, description: 'smallest change that counts as an improvement; default 0' })),
  },
  {
    additionalProperties: false,
    description: 'Whether or not it stops early, the model keeps the weights of its best epoch by `monitor`',
  },
);
export type EarlyStopping = Static<typeof EarlyStopping>;

/** The most epochs a job may ask for. */
export const MAX_EPOCHS = 1000;

export const Hyperparameters = Type.Object(
  {
    epochs: Type.Integer({ minimum: 1, maximum: MAX_EPOCHS }),
    batchSize: Type.Integer({ minimum: 1, maximum: 8192 }),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, description: 'seeds initialisation and shuffling' })),
    optimizer: Optimizer,
    lrSchedule: Type.Optional(LrSchedule),
    earlyStopping: Type.Optional(EarlyStopping),
    validatorSample: Type.Optional(
      Type.Integer({
        minimum: 16,
        maximum: VALIDATOR_SAMPLE_MAX,
        description: `domain_adaptation with data.target: how many target examples (and data.validation examples, for dev and errorBound) the label-free validators ${monitorsReading('target').join(', ')} read at each epoch's end, a fixed seeded sample. Default ${VALIDATOR_SAMPLE_DEFAULT}`,
      }),
    ),
    augment: Type.Optional(Augment),
  },
  { additionalProperties: false, description: 'required by train, finetune and domain_adaptation jobs; evaluate and predict jobs train nothing' },
);
export type Hyperparameters = Static<typeof Hyperparameters>;

export const JobType = Type.Union(
  [Type.Literal('train'), Type.Literal('finetune'), Type.Literal('domain_adaptation'), Type.Literal('evaluate'), Type.Literal('predict')],
  {
    description:
      '`train`: a new model (`model.architecture`) on `data.train`. `finetune`: a base model (`model.base`) on `data.train`, with a `strategy`. ' +
      '`domain_adaptation`: from labelled `data.source` to the `data.target` domain, with a `method`. `evaluate`: `model.base` on `data.test`, nothing trained. ' +
      '`predict`: `model.base` on every example of `data.input`, written as a file of predictions (`output`; GET /v1/jobs/{id}/predictions), nothing trained',
  },
);
export type JobType = Static<typeof JobType>;

const DatasetRef = (description: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 64, description }));

export const JobSpec = Type.Object(
  {
    type: JobType,
    model: Type.Object(
      {
        architecture: Type.Optional(Architecture),
        base: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 64,
            description: 'id of the model to start from (finetune, domain_adaptation), to evaluate or to predict with',
          }),
        ),
        bases: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
            minItems: 2,
            maxItems: 8,
            uniqueItems: true,
            description: 'domain_adaptation with method multi_source: ids of models of one architecture, each trained on another domain',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    strategy: Type.Optional(Strategy),
    method: Type.Optional(AdaptationMethod),
    data: Type.Object(
      {
        train: DatasetRef('train, finetune (required): labelled training set'),
        validation: DatasetRef('labelled validation set: per-epoch valLoss and valAccuracy, early stopping'),
        test: DatasetRef(
          'train, finetune, evaluate (required for evaluate): test set; its report (accuracy, loss, per-class accuracy, confusion matrix) ends the job',
        ),
        source: DatasetRef('domain_adaptation (required): labelled source-domain training set'),
        target: DatasetRef('domain_adaptation (required but for multi_source): target-domain examples, used without their labels unless targetLabelled'),
        targetTest: DatasetRef('domain_adaptation: labelled target-domain test set, for targetAccuracy and the report'),
        sourceTest: DatasetRef('domain_adaptation: source-domain test set for sourceAccuracy; without it, sourceAccuracy is measured on data.source'),
        targetLabelled: Type.Optional(Type.Boolean({ description: 'domain_adaptation: also train on the labels of data.target; default false' })),
        input: DatasetRef(
          "predict (required): the examples to predict, each fed as POST /v1/models/{id}/predict feeds one (the model's preprocessing on the stored values); its labels are not read",
        ),
      },
      { additionalProperties: false, description: 'dataset ids by role' },
    ),
    hyperparameters: Type.Optional(Hyperparameters),
    output: Type.Optional(
      Type.Object(
        {
          format: Type.Optional(
            Type.Union(
              PREDICTION_FORMATS.map((f) => Type.Literal(f)),
              {
                description:
                  '`jsonl` (default): one line per example, `{"index", "classes": [{"class", "probability"}, ...]}`. ' +
                  '`csv`: a header line, then `index,class_1,probability_1,...` per example',
              },
            ),
          ),
          topK: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 1000, description: 'how many classes each row lists, most probable first; default every class' }),
          ),
        },
        { additionalProperties: false, description: "predict jobs only: the predictions file, one row per example of data.input in the dataset's order" },
      ),
    ),
    checkpoint: Type.Optional(
      Type.Object(
        {
          everySteps: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 10_000_000,
              description: 'also checkpoint every this many steps within epochs (there is always one at the end of each epoch)',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          maxRuntimeSeconds: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 30 * 24 * 3600,
              description:
                'per attempt: an attempt that runs longer checkpoints and fails with code max_runtime (not retried); one whose step does not end is killed after STOP_GRACE_MS. A resumed job (after a pause, a crash or a hand-back) gets the full time again. Default JOB_DEFAULT_MAX_RUNTIME_SECONDS (24 h); at most JOB_MAX_RUNTIME_SECONDS (7 days), more is a 400',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    webhook: Type.Optional(
      Type.Object(
        {
          url: Type.String({
            minLength: 1,
            maxLength: 2048,
            description: 'http(s) URL called with POST when the job ends; loopback and private addresses only when listed in WEBHOOK_ALLOWED_HOSTS',
          }),
          secret: Type.Optional(
            Type.String({
              minLength: 8,
              maxLength: 256,
              description: 'signs each delivery: X-Tfjs-Adapt-Signature: sha256=<hex HMAC-SHA256 of the raw body>; write-only: no answer carries it',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
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
      {
        type: 'finetune',
        model: { base: 'mdl_...' },
        strategy: { kind: 'l2sp', alpha: 0.01, beta: 0.01, newHead: true },
        data: { train: 'ds_...', validation: 'ds_...', test: 'ds_...' },
        hyperparameters: {
          epochs: 20,
          batchSize: 32,
          optimizer: { name: 'momentum', learningRate: 0.01 },
          lrSchedule: { kind: 'cosine' },
          earlyStopping: { patience: 3 },
        },
      },
      {
        type: 'finetune',
        model: { base: 'mdl_...' },
        strategy: { kind: 'freeze', newHead: true, featureLayer: 'global_average_pooling2d_1', head: { hidden: [128], dropout: 0.2 } },
        data: { train: 'ds_...', validation: 'ds_...', test: 'ds_...' },
        hyperparameters: { epochs: 20, batchSize: 32, optimizer: { name: 'adam', learningRate: 0.001 } },
      },
      {
        type: 'domain_adaptation',
        model: { base: 'mdl_...' },
        method: { kind: 'dann', weight: 1 },
        data: { source: 'ds_...', target: 'ds_...', targetTest: 'ds_...' },
        hyperparameters: { epochs: 10, batchSize: 64, optimizer: { name: 'adam', learningRate: 0.001 } },
      },
      { type: 'evaluate', model: { base: 'mdl_...' }, data: { test: 'ds_...' } },
      { type: 'predict', model: { base: 'mdl_...' }, data: { input: 'ds_...' }, output: { format: 'csv', topK: 3 } },
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

export const JobEstimate = Type.Object(
  {
    parameters: Type.Integer({ description: 'weights of the model' }),
    parameterBytes: Type.Integer({
      description: "the model's weights plus the copies and extra layers the method holds (L2-SP anchors, the bases' mean, DANN's domain classifier)",
    }),
    optimizerStateBytes: Type.Integer({ description: "the optimizer's slots for every trained weight (none for sgd, one for momentum, two for adam)" }),
    activationBytes: Type.Integer({
      description:
        "peak working memory of one step: forward and backward of a batch (target rows and the method's extra passes included) with its gradients, the optimizer's update, an evaluation batch, or a domain-adaptation job's label-free validators at an epoch's end (snd's blocks of 256 × validatorSample arrays, the domain classifiers), whichever is more",
    }),
    datasetBytes: Type.Integer({ description: 'the datasets the training child loads, in their stored element type, and the batches cut from them' }),
    memoryBytes: Type.Integer({ description: "the sum: the training child's estimated peak memory, held against JOB_MAX_MEMORY_BYTES" }),
    stepsPerEpoch: Type.Integer(),
    flopsPerEpoch: Type.Number({
      description: "floating-point operations of one epoch: training steps, validation, and a domain-adaptation job's label-free validators",
    }),
    flops: Type.Number({ description: 'all epochs plus the final evaluations, held against JOB_MAX_FLOPS' }),
    outputBytes: Type.Optional(
      Type.Integer({
        description:
          "predict jobs: the most bytes the predictions file can take (every row with the longest class names), held against 1 GiB and the tenant's storage quota",
      }),
    ),
  },
  {
    $id: 'JobEstimate',
    description:
      "what the job costs the training child, estimated before it is queued from the spec, the model's layers and the datasets' shapes (within 2x of the measured peak)",
  },
);
export type JobEstimate = Static<typeof JobEstimate>;

export const FeatureCacheReport = Type.Object(
  {
    status: Type.Union([Type.Literal('built'), Type.Literal('reused'), Type.Literal('unused')], {
      description:
        "`built`: the frozen part's outputs were computed and kept; `reused`: an earlier job's were read; `unused`: every epoch ran the whole network (see `reason`)",
    }),
    reason: Type.Optional(Type.String({ description: "unused: why the frozen part's outputs could not be cached" })),
    layer: Type.Optional(Type.String({ description: 'built, reused: the layer whose outputs were cached (the last frozen one)' })),
    seconds: Type.Number({ description: 'time spent building or reading the cache' }),
    bytes: Type.Optional(Type.Integer({ description: "built, reused: what the cached features take on disk (counted in the tenant's storage quota)" })),
  },
  { $id: 'FeatureCacheReport', description: "finetune jobs: whether the frozen part's outputs were computed once and the trained layers trained on them" },
);
export type FeatureCacheReport = Static<typeof FeatureCacheReport>;

export const PredictionsFile = Type.Object(
  {
    format: Type.Union(PREDICTION_FORMATS.map((f) => Type.Literal(f))),
    rows: Type.Integer({ description: 'one per example of data.input, in its order' }),
    bytes: Type.Integer({ description: "the file's size, counted in the tenant's storage quota while the job is kept" }),
    url: Type.String({ description: 'where to download it: /v1/jobs/{id}/predictions' }),
  },
  { $id: 'PredictionsFile', description: 'predict jobs: the file of predictions written' },
);
export type PredictionsFile = Static<typeof PredictionsFile>;

export const Job = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('job'),
    type: JobType,
    status: JobStatus,
    spec: JobSpec,
    progress: Type.Union([Progress, Type.Null()]),
    metrics: Type.Union([Metrics, Type.Null()], { description: 'latest per-epoch metrics' }),
    result: Type.Union([
      Type.Object({
        modelId: Type.String({ description: 'the model trained; for evaluate and predict jobs, the model run' }),
        metrics: Metrics,
        featureCache: Type.Optional(FeatureCacheReport),
        predictions: Type.Optional(PredictionsFile),
      }),
      Type.Null(),
    ]),
    error: Type.Union([JobError, Type.Null()]),
    attempt: Type.Integer({ description: 'how many times the job has been started' }),
    estimate: Type.Union([JobEstimate, Type.Null()], {
      description: 'the cost estimate the job was admitted with (refreshed on resume); null for jobs created before estimates',
    }),
    backend: Type.Union([Type.String(), Type.Null()], { description: 'tfjs backend that ran it: tensorflow, wasm or cpu' }),
    sweepId: Type.Union([Type.String(), Type.Null()], {
      description: 'the sweep this job is a trial of (GET /v1/sweeps/{id}); null for a job created on its own',
    }),
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
    sweepId: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'only the trials of this sweep' })),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuery>;
