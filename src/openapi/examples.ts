/**
 * Example requests and answers for the OpenAPI document, taken from a real run of the
 * service (ids and figures from an MNIST job). They live here, not in the route schemas,
 * because the schemas are shared between routes and validate requests: an example in the
 * document must never change what a route accepts. Keyed by "METHOD /path" with the
 * document's path syntax ({id}) and no trailing slash.
 */

const DS_TRAIN = 'ds_01a22198f09a106829b6a723';
const DS_TEST = 'ds_01a22198f0f59111d8d9ffbe';
const JOB = 'job_01a22198f1626b3606292b86';
const MODEL = 'mdl_01a22198f1626b3606292b86';
const CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

const spec = {
  type: 'train',
  model: { architecture: { kind: 'mlp', hidden: [128], activation: 'linear' } },
  data: { train: DS_TRAIN, test: DS_TEST },
  hyperparameters: { epochs: 10, batchSize: 64, seed: 1, optimizer: { name: 'sgd', learningRate: 0.001, momentum: 0.9 } },
};

const dataset = {
  id: DS_TRAIN,
  object: 'dataset',
  name: 'mnist-train',
  status: 'ready',
  source: { builtin: 'mnist', split: 'train' },
  numExamples: 60000,
  featureShape: [784],
  featureDtype: 'uint8',
  imageShape: [28, 28, 1],
  numClasses: 10,
  classes: CLASSES,
  classCounts: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
  preprocessing: { scale: 0.00784313725490196, offset: -1 },
  error: null,
  createdAt: '2026-11-28T10:00:00.926Z',
};

const uploading = {
  ...dataset,
  id: 'ds_01a2219a3c5e0e7d1f2b4c11',
  name: 'digits-csv',
  status: 'validating',
  source: { upload: 'csv', files: [{ field: 'file', filename: 'digits.csv', bytes: 1843200 }], labelColumn: 'label' },
  numExamples: null,
  featureShape: null,
  featureDtype: null,
  imageShape: null,
  numClasses: null,
  classes: null,
  classCounts: null,
  preprocessing: null,
};

const estimate = {
  parameters: 101770,
  parameterBytes: 407080,
  optimizerStateBytes: 407080,
  activationBytes: 2442480,
  datasetBytes: 57433520,
  memoryBytes: 60690160,
  stepsPerEpoch: 938,
  flopsPerEpoch: 36607033344,
  flops: 368102973440,
};

const queued = {
  id: JOB,
  object: 'job',
  type: 'train',
  status: 'queued',
  spec,
  progress: null,
  metrics: null,
  result: null,
  error: null,
  attempt: 0,
  estimate,
  backend: null,
  sweepId: null,
  cancelRequested: false,
  pauseRequested: false,
  createdAt: '2026-11-28T10:00:01.127Z',
  startedAt: null,
  finishedAt: null,
};

const running = {
  ...queued,
  status: 'running',
  progress: { epoch: 4, epochs: 10, step: 512, steps: 938 },
  metrics: { epoch: 3, loss: 0.3427, accuracy: 0.897, samplesPerSecond: 5899.1, epochSeconds: 10.17 },
  attempt: 1,
  backend: 'tensorflow',
  startedAt: '2026-11-28T10:00:01.148Z',
};

const finalMetrics = {
  loss: 0.2761,
  accuracy: 0.9214,
  testLoss: 0.2802,
  testAccuracy: 0.9208,
  samplesPerSecond: 6120.4,
  epochSeconds: 9.8,
  classes: CLASSES,
  perClassAccuracy: [0.98, 0.98, 0.9, 0.9, 0.93, 0.87, 0.95, 0.92, 0.88, 0.9],
};

const succeeded = {
  ...running,
  status: 'succeeded',
  progress: { epoch: 10, epochs: 10, step: 938, steps: 938 },
  metrics: { epoch: 10, loss: 0.2761, accuracy: 0.9214, samplesPerSecond: 6120.4, epochSeconds: 9.8 },
  result: { modelId: MODEL, metrics: finalMetrics },
  finishedAt: '2026-11-28T10:01:43.620Z',
};

const model = {
  id: MODEL,
  object: 'model',
  name: `train ${JOB}`,
  status: 'ready',
  jobId: JOB,
  baseModelId: null,
  datasetIds: { train: DS_TRAIN, test: DS_TEST },
  metrics: finalMetrics,
  inputShape: [784],
  classes: CLASSES,
  preprocessing: { scale: 0.00784313725490196, offset: -1 },
  source: null,
  error: null,
  files: { modelJson: `/v1/models/${MODEL}/model.json`, weights: `/v1/models/${MODEL}/weights.bin` },
  createdAt: '2026-11-28T10:01:43.620Z',
};

const page = <T>(...data: T[]) => ({ data, hasMore: false, nextCursor: null });

const sweepSpec = {
  template: spec,
  parameters: { '/hyperparameters/optimizer/learningRate': { values: [0.001, 0.01] } },
  objective: { metric: 'testAccuracy', goal: 'maximize' },
  algorithm: 'grid',
  maxParallel: 1,
};
const sweepTrial = (index: number, learningRate: number, status: string) => ({
  index,
  jobId: index === 0 || status !== 'pending' ? JOB : null,
  parameters: { '/hyperparameters/optimizer/learningRate': learningRate },
  status,
  objective: status === 'succeeded' ? { metric: 'testAccuracy', value: 0.91 + index / 100, epoch: 10 } : null,
  latest: null,
  stopped: null,
});
const sweepRunning = {
  id: 'swp_0192a1b2c3d4e5f6a7b8c9d0',
  object: 'sweep',
  status: 'running',
  spec: { ...sweepSpec, seed: 1234, maxTrials: 2 },
  goal: 'maximize',
  trials: [sweepTrial(0, 0.001, 'queued'), sweepTrial(1, 0.01, 'pending')],
  best: null,
  // a fine-tune sweep's trials report no label-free validator
  validatorPicks: [],
  estimate: { trials: 2, flops: 2.4e12, maxTrialMemoryBytes: 27000000 },
  createdAt: '2026-11-28T10:00:01.127Z',
  finishedAt: null,
};
const sweepDone = {
  ...sweepRunning,
  status: 'succeeded',
  trials: [sweepTrial(0, 0.001, 'succeeded'), sweepTrial(1, 0.01, 'succeeded')],
  best: {
    index: 1,
    jobId: JOB,
    parameters: { '/hyperparameters/optimizer/learningRate': 0.01 },
    objective: { metric: 'testAccuracy', value: 0.92, epoch: 10 },
    reason: 'trial 1 has the highest testAccuracy (0.92 at epoch 10) of the 2 trials that reported it; the next best, trial 0, has 0.91',
  },
  finishedAt: '2026-11-28T10:20:01.000Z',
};

const events = [
  { seq: 1, type: 'status', createdAt: '2026-11-28T10:00:01.127Z', data: { status: 'queued' } },
  { seq: 2, type: 'status', createdAt: '2026-11-28T10:00:01.148Z', data: { status: 'running', attempt: 1 } },
  { seq: 3, type: 'log', createdAt: '2026-11-28T10:00:02.200Z', data: { level: 'info', backend: 'tensorflow', message: 'training on the tensorflow backend' } },
  { seq: 4, type: 'progress', createdAt: '2026-11-28T10:00:02.385Z', data: { epoch: 1, epochs: 10, step: 200, steps: 938, loss: 0.9312 } },
  {
    seq: 9,
    type: 'metrics',
    createdAt: '2026-11-28T10:00:11.430Z',
    data: { epoch: 1, loss: 0.873, accuracy: 0.7303, samplesPerSecond: 6250.2, epochSeconds: 9.6 },
  },
  { seq: 10, type: 'checkpoint', createdAt: '2026-11-28T10:00:11.470Z', data: { epoch: 1, step: 938, metrics: { loss: 0.873, accuracy: 0.7303 } } },
];

const checkpoint = (epoch: number, loss: number, accuracy: number) => ({
  epoch,
  step: epoch * 938,
  attempt: 1,
  metrics: { loss, accuracy, samplesPerSecond: 6120.4, epochSeconds: 9.8 },
  createdAt: '2026-11-28T10:00:11.470Z',
});

const TOO_LARGE =
  "is 8192: the training child's estimated peak memory is 15.1 GiB (weights 12.3 MiB, optimizer state 0 bytes, one step's activations 15.0 GiB for batches of 8192, datasets 9.26 MiB), " +
  'over the limit of 2.00 GiB (JOB_MAX_MEMORY_BYTES); expected a batchSize of at most 260';
const TOO_MANY =
  'tenant default already has 100 unfinished jobs (queued, running or paused; MAX_ACTIVE_JOBS_PER_TENANT is 100); wait for some to finish, or cancel paused ones';

const problem = (status: number, slug: string, title: string, detail: string, instance: string, errors?: Array<{ pointer: string; detail: string }>) => ({
  type: `urn:tfjs-adapt:problem:${slug}`,
  title,
  status,
  detail,
  instance,
  ...(errors ? { errors } : {}),
});

export interface OperationExamples {
  /** request body examples by content type */
  request?: Record<string, unknown>;
  /** response examples by status code (the first content type of that response) */
  responses: Record<string, unknown>;
}

export const EXAMPLES: Record<string, OperationExamples> = {
  'GET /health': { responses: { 200: { status: 'ok', backend: 'tensorflow', backendOverride: null, store: 'postgres' } } },
  'GET /ready': {
    responses: {
      200: { status: 'ready', checks: { store: 'ok', redis: 'ok' } },
      503: { status: 'unavailable', checks: { store: 'ok', redis: 'down' } },
    },
  },
  'GET /metrics': {
    responses: {
      200:
        '# HELP tfjs_adapt_jobs Jobs in the store by status.\n# TYPE tfjs_adapt_jobs gauge\ntfjs_adapt_jobs{status="queued"} 2\ntfjs_adapt_jobs{status="running"} 1\n' +
        '# HELP tfjs_adapt_queue_depth Jobs in the queue waiting for a worker (waiting, prioritized, delayed); absent when the queue did not answer.\n# TYPE tfjs_adapt_queue_depth gauge\ntfjs_adapt_queue_depth 2\n',
    },
  },

  'POST /v1/datasets': {
    request: {
      'application/json': { name: 'mnist-train', source: { builtin: 'mnist', split: 'train' } },
      'multipart/form-data': { name: 'digits-csv', format: 'csv', file: '(digits.csv)', labelColumn: 'label' },
    },
    responses: {
      201: dataset,
      202: uploading,
      400: problem(400, 'validation', 'The request is not valid', 'body /source/split must be one of "train", "test"', '/v1/datasets', [
        { pointer: '/source/split', detail: 'must be one of "train", "test"' },
      ]),
      413: problem(
        413,
        'upload_too_large',
        'Upload too large',
        'the upload is larger than 1073741824 bytes, the limit of this service (UPLOAD_LIMIT_BYTES); nothing was stored',
        '/v1/datasets',
      ),
      415: problem(415, 'fst_err_ctp_invalid_media_type', 'Unsupported Media Type: text/plain', 'Unsupported Media Type: text/plain', '/v1/datasets'),
    },
  },
  'GET /v1/datasets': { responses: { 200: page(dataset) } },
  'GET /v1/datasets/{id}': {
    responses: {
      200: dataset,
      404: problem(404, 'not_found', 'Dataset not found', 'no dataset has the id "ds_nope"', '/v1/datasets/ds_nope', [
        { pointer: '/id', detail: 'unknown id' },
      ]),
    },
  },
  'DELETE /v1/datasets/{id}': {
    responses: {
      409: problem(409, 'in_use', 'Dataset in use', `dataset ${DS_TRAIN} is used by unfinished jobs: ${JOB}; cancel them or wait`, `/v1/datasets/${DS_TRAIN}`),
    },
  },
  'GET /v1/datasets/{id}/examples': {
    responses: {
      200: {
        data: [{ index: 0, label: 5, class: '5', image: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBI...' }],
        offset: 0,
        total: 60000,
        nextOffset: 1,
      },
      409: problem(
        409,
        'not_ready',
        'Dataset not ready',
        `dataset ${uploading.id} is validating; examples can be read once it is ready`,
        `/v1/datasets/${uploading.id}/examples`,
      ),
    },
  },

  'POST /v1/models': {
    request: {
      'multipart/form-data': { name: 'pretrained-mlp', modelJson: '(model.json)', weights: ['(weights.bin)'] },
      'application/json': {
        name: 'mobilenet',
        source: { url: 'https://models.example/mobilenet_v2/model.json' },
        preprocessing: { scale: 0.00784313725490196, offset: -1 },
      },
    },
    responses: {
      201: { ...model, id: 'mdl_01a2219b00aa4e1c2d3f5a7b', name: 'pretrained-mlp', jobId: null, datasetIds: {}, metrics: null },
      202: {
        ...model,
        id: 'mdl_01a2219b00aa4e1c2d3f5a7c',
        name: 'mobilenet',
        status: 'validating',
        jobId: null,
        datasetIds: {},
        metrics: null,
        inputShape: null,
        classes: null,
        source: { url: 'https://models.example/mobilenet_v2/model.json' },
      },
    },
  },
  'GET /v1/models': { responses: { 200: page(model) } },
  'GET /v1/models/{id}': { responses: { 200: model } },
  'DELETE /v1/models/{id}': {
    responses: {
      409: problem(409, 'in_use', 'Model in use', `model ${MODEL} is the base of unfinished jobs: job_01a2219c7d1e2f3a4b5c6d7e`, `/v1/models/${MODEL}`),
    },
  },
  'GET /v1/models/{id}/model.json': {
    responses: {
      200: {
        format: 'layers-model',
        generatedBy: 'TensorFlow.js tfjs-layers v4.22.0',
        modelTopology: { class_name: 'Sequential', config: { name: 'sequential_1', layers: ['…'] } },
        weightsManifest: [
          {
            paths: ['weights.bin'],
            weights: [
              { name: 'dense_Dense1/kernel', shape: [784, 128], dtype: 'float32' },
              { name: 'dense_Dense1/bias', shape: [128], dtype: 'float32' },
            ],
          },
        ],
        userDefinedMetadata: { tfjsAdapt: { inputShape: [784], classes: CLASSES, preprocessing: { scale: 0.00784313725490196, offset: -1 } } },
      },
    },
  },
  'GET /v1/models/{id}/weights.bin': {
    responses: {
      200: '(binary: the float32 weights, little-endian, in weightsManifest order)',
      409: problem(409, 'not_ready', 'Model not ready', `model ${MODEL} is validating`, `/v1/models/${MODEL}/weights.bin`),
    },
  },
  'POST /v1/models/{id}/predict': {
    request: {
      'application/json': { examples: [new Array(784).fill(0)], topK: 3 },
      'multipart/form-data': { image: ['(seven.png)'], topK: '3' },
    },
    responses: {
      200: {
        predictions: [
          {
            classes: [
              { class: '7', probability: 0.9412 },
              { class: '9', probability: 0.0311 },
              { class: '2', probability: 0.0105 },
            ],
          },
        ],
      },
      400: problem(
        400,
        'validation',
        "Examples do not fit the model's input shape [784]",
        '/examples/3 has 783 entries; expected 784 numbers',
        `/v1/models/${MODEL}/predict`,
        [{ pointer: '/examples/3', detail: 'has 783 entries; expected 784 numbers' }],
      ),
      404: problem(404, 'not_found', 'Model not found', 'no model has the id "mdl_nope"', '/v1/models/mdl_nope/predict', [
        { pointer: '/id', detail: 'unknown id' },
      ]),
      409: problem(409, 'not_ready', 'Model not ready', `model ${MODEL} is validating`, `/v1/models/${MODEL}/predict`),
      413: problem(
        413,
        'body_too_large',
        'Request too large',
        'a prediction request may carry at most 16777216 bytes (PREDICT_MAX_BODY_BYTES); send fewer examples per request',
        `/v1/models/${MODEL}/predict`,
      ),
      429: problem(
        429,
        'too_many_predictions',
        'Too many predictions in flight',
        'tenant default has 4 predictions in flight, the most one tenant may have (PREDICT_TENANT_CONCURRENCY)',
        `/v1/models/${MODEL}/predict`,
      ),
      503: problem(
        503,
        'prediction_failed',
        'Prediction failed',
        'the prediction child exited (SIGKILL) while answering; it is being replaced, try again',
        `/v1/models/${MODEL}/predict`,
      ),
    },
  },

  'POST /v1/jobs': {
    request: { 'application/json': spec },
    responses: {
      200: { object: 'job_estimate', type: 'train', estimate, limits: { maxMemoryBytes: 2147483648, maxFlops: 1e15 } },
      202: queued,
      400: problem(400, 'job_too_large', 'The job would exceed a resource limit', `/hyperparameters/batchSize ${TOO_LARGE}`, '/v1/jobs', [
        { pointer: '/hyperparameters/batchSize', detail: TOO_LARGE },
      ]),
      409: problem(409, 'idempotency_conflict', 'Idempotency-Key reused', `key "nightly-42" was used for a different request (job ${JOB})`, '/v1/jobs'),
      429: problem(429, 'too_many_jobs', 'Too many unfinished jobs', TOO_MANY, '/v1/jobs'),
      503: problem(503, 'queue_unavailable', 'Queue unavailable', 'the job queue (Redis) is not reachable; nothing was created, retry later', '/v1/jobs'),
    },
  },
  'GET /v1/jobs': { responses: { 200: page(running) } },
  'GET /v1/jobs/{id}': {
    responses: {
      200: succeeded,
      404: problem(404, 'not_found', 'Job not found', 'no job has the id "job_nope"', '/v1/jobs/job_nope', [{ pointer: '/id', detail: 'unknown id' }]),
    },
  },
  'POST /v1/jobs/{id}/cancel': {
    responses: {
      200: { ...queued, status: 'cancelled', cancelRequested: true, finishedAt: '2026-11-28T10:00:03.000Z' },
      202: { ...running, cancelRequested: true },
      409: problem(409, 'already_finished', 'Job already finished', `job ${JOB} is succeeded`, `/v1/jobs/${JOB}/cancel`),
    },
  },
  'POST /v1/jobs/{id}/pause': {
    responses: {
      200: { ...queued, status: 'paused' },
      202: { ...running, pauseRequested: true },
      409: problem(409, 'not_pausable', 'Job cannot be paused', `job ${JOB} is succeeded; only queued or running jobs can be paused`, `/v1/jobs/${JOB}/pause`),
    },
  },
  'POST /v1/jobs/{id}/resume': {
    responses: {
      202: { ...running, status: 'queued', progress: { epoch: 4, epochs: 10, step: 938, steps: 938 } },
      409: problem(409, 'not_paused', 'Job is not paused', `job ${JOB} is running; only paused jobs can be resumed`, `/v1/jobs/${JOB}/resume`),
      429: problem(429, 'too_many_jobs', 'Too many unfinished jobs', TOO_MANY.replace('; wait', `; job ${JOB} stays paused: wait`), `/v1/jobs/${JOB}/resume`),
    },
  },
  'GET /v1/jobs/{id}/checkpoints': { responses: { 200: { data: [checkpoint(1, 0.873, 0.7303), checkpoint(2, 0.4025, 0.8767)] } } },
  'POST /v1/jobs/{id}/checkpoints/{epoch}/model': {
    responses: {
      201: {
        ...model,
        id: 'mdl_01a2219d5e6f7a8b9c0d1e2f',
        name: `train ${JOB} epoch 2`,
        metrics: { ...checkpoint(2, 0.4025, 0.8767).metrics, epoch: 2, step: 1876 },
      },
      404: problem(
        404,
        'checkpoint_not_found',
        'Checkpoint not found',
        `job ${JOB} has no checkpoint of epoch 12; it has checkpoints of epochs 1, 2`,
        `/v1/jobs/${JOB}/checkpoints/12/model`,
        [{ pointer: '/epoch', detail: 'expected one of 1, 2' }],
      ),
      409: problem(
        409,
        'checkpoint_gone',
        'Checkpoint files gone',
        `the checkpoint of epoch 2 (step 1876) of job ${JOB} is no longer on disk`,
        `/v1/jobs/${JOB}/checkpoints/2/model`,
      ),
    },
  },
  'GET /v1/jobs/{id}/events': { responses: { 200: { data: events, hasMore: true, nextCursor: '10' } } },
  'GET /v1/jobs/{id}/predictions': {
    responses: {
      200:
        '{"index":0,"classes":[{"class":"7","probability":0.9712},{"class":"9","probability":0.0151},{"class":"2","probability":0.0064}]}\n' +
        '{"index":1,"classes":[{"class":"2","probability":0.8843},{"class":"3","probability":0.0522},{"class":"8","probability":0.0311}]}\n',
      409: problem(
        409,
        'not_ready',
        'Predictions not ready',
        `job ${JOB} is running; its predictions can be downloaded once it has succeeded`,
        `/v1/jobs/${JOB}/predictions`,
      ),
    },
  },

  'POST /v1/sweeps': { request: { 'application/json': sweepSpec }, responses: { 202: sweepRunning } },
  'GET /v1/sweeps': { responses: { 200: page(sweepDone) } },
  'GET /v1/sweeps/{id}': { responses: { 200: sweepDone } },
  'POST /v1/sweeps/{id}/cancel': {
    responses: {
      200: {
        ...sweepRunning,
        status: 'cancelled',
        trials: sweepRunning.trials.map((t) => (t.status === 'queued' ? { ...t, status: 'cancelled' } : t)),
        finishedAt: '2026-11-28T10:00:09.000Z',
      },
    },
  },
  'GET /v1/sweeps/{id}/events': {
    responses: {
      200: {
        data: [
          { seq: 1, type: 'status', createdAt: '2026-11-28T10:00:01.127Z', data: { status: 'running', trials: 2 } },
          {
            seq: 2,
            type: 'trial',
            createdAt: '2026-11-28T10:00:01.130Z',
            data: { index: 0, jobId: JOB, status: 'queued', parameters: { '/hyperparameters/optimizer/learningRate': 0.001 } },
          },
        ],
        hasMore: false,
        nextCursor: null,
      },
    },
  },
};

/** Example values of path parameters, by the path's first segment after /v1. */
export const ID_EXAMPLES: Record<string, string> = { jobs: JOB, datasets: DS_TRAIN, models: MODEL, sweeps: 'swp_0192a1b2c3d4e5f6a7b8c9d0' };
