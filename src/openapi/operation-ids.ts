/**
 * The operationId of every operation, by "METHOD /path" (as operationKey writes it): the method
 * names a generated client gives them. Kept here beside the examples rather than in each route
 * so the names read as one API; the OpenAPI test fails on an operation missing from this table.
 */
export const OPERATION_IDS: Record<string, string> = {
  'GET /health': 'getHealth',
  'GET /ready': 'getReadiness',
  'GET /metrics': 'getMetrics',

  'POST /v1/datasets': 'createDataset',
  'GET /v1/datasets': 'listDatasets',
  'GET /v1/datasets/{id}': 'getDataset',
  'DELETE /v1/datasets/{id}': 'deleteDataset',
  'GET /v1/datasets/{id}/examples': 'listDatasetExamples',

  'POST /v1/models': 'uploadModel',
  'GET /v1/models': 'listModels',
  'GET /v1/models/{id}': 'getModel',
  'DELETE /v1/models/{id}': 'deleteModel',
  'GET /v1/models/{id}/model.json': 'downloadModelJson',
  'GET /v1/models/{id}/weights.bin': 'downloadModelWeights',
  'POST /v1/models/{id}/predict': 'predict',

  'POST /v1/jobs': 'createJob',
  'GET /v1/jobs': 'listJobs',
  'GET /v1/jobs/{id}': 'getJob',
  'POST /v1/jobs/{id}/cancel': 'cancelJob',
  'POST /v1/jobs/{id}/pause': 'pauseJob',
  'POST /v1/jobs/{id}/resume': 'resumeJob',
  'GET /v1/jobs/{id}/checkpoints': 'listJobCheckpoints',
  'POST /v1/jobs/{id}/checkpoints/{epoch}/model': 'createModelFromCheckpoint',
  'GET /v1/jobs/{id}/events': 'listJobEvents',
  'GET /v1/jobs/{id}/predictions': 'downloadJobPredictions',

  'POST /v1/sweeps': 'createSweep',
  'GET /v1/sweeps': 'listSweeps',
  'GET /v1/sweeps/{id}': 'getSweep',
  'POST /v1/sweeps/{id}/cancel': 'cancelSweep',
  'GET /v1/sweeps/{id}/events': 'listSweepEvents',
};
