import type { Artifacts } from '../artifacts/artifacts.js';
import type { FieldError } from '../field-error.js';
import type { JobSpec } from '../schemas/job.js';
import type { ReadyDataset } from '../store/datasets.js';
import type { ModelRecord } from '../store/models.js';
import type { Store } from '../store/store.js';
import { webhookUrlProblem } from '../webhooks/address-policy.js';
import { specProblems } from './spec-rules.js';
import { cnnInputShape } from './input-shape.js';
import type { DatasetFiles, TrainingData, TrainingTask } from './task.js';

/** A job trains exactly one model, so the model's id follows from the job's. */
export const modelIdFor = (jobId: string) => `mdl_${jobId.slice('job_'.length)}`;

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

function files(d: ReadyDataset, artifacts: Artifacts): DatasetFiles {
  return {
    id: d.id,
    // from the id, not the recorded path: that is the path on the host that wrote it
    dir: artifacts.datasetDir(d.id),
    numExamples: d.numExamples!,
    featureShape: d.featureShape!,
    featureDtype: d.featureDtype!,
    numClasses: d.numClasses!,
    classes: d.classes!,
    preprocessing: d.preprocessing!,
  };
}

export interface ResolveOptions {
  jobId: string;
  spec: JobSpec;
  /** whose datasets and models the spec may name; undefined for any tenant's (reconciliation acts for every tenant) */
  tenant: string | undefined;
  /** WEBHOOK_ALLOWED_HOSTS: hosts a webhook may reach though they are loopback or private */
  webhookAllowedHosts: readonly string[];
}

/**
 * Checks what the schema cannot (the rules of spec-rules.ts, the webhook address, and that
 * referenced datasets and models exist, are ready and fit together) and resolves the spec into
 * the files the training child reads. Returns the problems, each pointing at the field to blame,
 * when it cannot. Creating, resuming and reconciling a job all resolve it here, with the same options.
 */
export async function resolveTask(store: Store, artifacts: Artifacts, opts: ResolveOptions): Promise<{ task: TrainingTask } | { errors: FieldError[] }> {
  const { jobId, spec, tenant, webhookAllowedHosts } = opts;
  const errors: FieldError[] = specProblems(spec);
  const problem = (pointer: string, detail: string) => errors.push({ pointer, in: 'body', detail });

  if (spec.webhook) {
    const refused = await webhookUrlProblem(spec.webhook.url, webhookAllowedHosts);
    if (refused) problem('/webhook/url', refused);
  }

  const roles = ['train', 'validation', 'test', 'source', 'target', 'targetTest', 'sourceTest'] as const;
  const data: Partial<Record<(typeof roles)[number], ReadyDataset>> = {};
  for (const role of roles) {
    const id = spec.data[role];
    if (id === undefined) continue;
    const d = await store.datasets.get(id, tenant);
    if (!d) problem(`/data/${role}`, `no dataset has the id ${JSON.stringify(id)}`);
    else if (d.status !== 'ready') problem(`/data/${role}`, `dataset ${id} is ${d.status}, not ready`);
    else data[role] = d;
  }
  // The labelled set the model trains on: every other set must look like it.
  const trainRole = spec.type === 'domain_adaptation' ? 'source' : 'train';
  const train = data[trainRole];
  for (const role of ['validation', 'test', 'targetTest', 'sourceTest', 'target'] as const) {
    const d = data[role];
    if (!train || !d) continue;
    if (!sameShape(d.featureShape!, train.featureShape!)) {
      problem(`/data/${role}`, `examples have shape [${d.featureShape}], the ${trainRole} dataset's have [${train.featureShape}]`);
    } else if ((role !== 'target' || spec.data.targetLabelled) && d.numClasses !== train.numClasses) {
      problem(`/data/${role}`, `has ${d.numClasses} classes, the ${trainRole} dataset has ${train.numClasses}`);
    }
  }
  if (spec.model.architecture?.kind === 'cnn' && train && !cnnInputShape(train.featureShape!)) {
    problem('/model/architecture/kind', `cnn needs image-like examples (featureShape [h, w, c], [h, w] or a square [n]); dataset ${train.id} has [${train.featureShape}]`);
  }

  // Models must take the examples and predict their classes (a finetune may ask for a new head).
  const fits = train ?? data.test;
  const fitsRole = train ? trainRole : 'test';
  const readyModel = async (id: string, pointer: string): Promise<ModelRecord | undefined> => {
    const m = await store.models.get(id, tenant);
    if (!m) problem(pointer, `no model has the id ${JSON.stringify(id)}`);
    else if (m.status !== 'ready') problem(pointer, `model ${m.id} is ${m.status}, not ready`);
    else if (fits && m.inputShape && !sameShape(m.inputShape, fits.featureShape!)) {
      problem(pointer, `takes inputs of shape [${m.inputShape}], the ${fitsRole} dataset's examples have [${fits.featureShape}]`);
    } else return m;
    return undefined;
  };
  const checkClasses = (m: ModelRecord, pointer: string) => {
    if (!fits || !m.classes || m.classes.length === fits.numClasses) return;
    if (spec.type === 'finetune' && spec.strategy?.newHead) return;
    if (spec.type === 'finetune') {
      problem('/strategy/newHead', `must be true: base model ${m.id} predicts ${m.classes.length} classes, dataset ${fits.id} has ${fits.numClasses}; a new head replaces its output layer`);
    } else {
      problem(pointer, `predicts ${m.classes.length} classes, the ${fitsRole} dataset ${fits.id} has ${fits.numClasses}`);
    }
  };
  const base = spec.model.base === undefined ? undefined : await readyModel(spec.model.base, '/model/base');
  if (base) checkClasses(base, '/model/base');
  const bases: ModelRecord[] = [];
  for (const [i, id] of (spec.model.bases ?? []).entries()) {
    const m = await readyModel(id, `/model/bases/${i}`);
    if (m) checkClasses(m, `/model/bases/${i}`);
    if (m) bases.push(m);
  }
  if (errors.length > 0) return { errors };

  const taskData: TrainingData = {};
  if (train) taskData.train = files(train, artifacts);
  for (const role of ['validation', 'test', 'target', 'targetTest', 'sourceTest'] as const) {
    const d = data[role];
    if (d) taskData[role] = files(d, artifacts);
  }
  const modelId = modelIdFor(jobId);
  return {
    task: {
      jobId,
      spec,
      data: taskData,
      ...(base ? { baseModelDir: artifacts.modelDir(base.id), baseModelId: base.id } : {}),
      ...(bases.length > 0 ? { baseModelDirs: bases.map((m) => artifacts.modelDir(m.id)), baseModelIds: bases.map((m) => m.id) } : {}),
      modelDir: artifacts.modelDir(modelId),
      modelId,
      checkpointsDir: artifacts.checkpointsDir(jobId),
    },
  };
}
