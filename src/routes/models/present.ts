import type { Model } from '../../schemas/model.js';
import type { ModelRecord } from '../../store/models.js';

/** A stored model as the API shows it, with its download URLs. */
export const present = (m: ModelRecord): Model => ({
  id: m.id,
  object: 'model',
  name: m.name,
  status: m.status,
  jobId: m.jobId,
  baseModelId: m.baseModelId,
  datasetIds: m.datasetIds,
  metrics: m.metrics,
  inputShape: m.inputShape,
  classes: m.classes,
  preprocessing: m.preprocessing,
  source: m.source,
  error: m.error,
  files: { modelJson: `/v1/models/${m.id}/model.json`, weights: `/v1/models/${m.id}/weights.bin` },
  createdAt: m.createdAt,
});
