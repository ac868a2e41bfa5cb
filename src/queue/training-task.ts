import type { Artifacts } from '../artifacts/artifacts.js';
import type { FieldError } from '../plugins/problem.js';
import type { JobSpec } from '../schemas/job.js';
import type { DatasetRecord } from '../store/datasets.js';
import type { Store } from '../store/store.js';
import type { DatasetFiles, TrainingTask } from '../../workers/task.js';

/** A job trains exactly one model, so the model's id follows from the job's. */
export const modelIdFor = (jobId: string) => `mdl_${jobId.slice('job_'.length)}`;

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

function files(d: DatasetRecord): DatasetFiles {
  return {
    id: d.id,
    dir: d.dir!,
    numExamples: d.numExamples!,
    featureShape: d.featureShape!,
    featureDtype: d.featureDtype!,
    numClasses: d.numClasses!,
    classes: d.classes!,
    preprocessing: d.preprocessing!,
  };
}

/**
 * Checks what the schema cannot (that referenced datasets and models exist, are ready
 * and fit together) and resolves the spec into the files the training child reads.
 * Returns the problems, each pointing at the field to blame, when it cannot.
 */
export async function resolveTask(store: Store, artifacts: Artifacts, jobId: string, spec: JobSpec): Promise<{ task: TrainingTask } | { errors: FieldError[] }> {
  const errors: FieldError[] = [];
  const problem = (pointer: string, detail: string) => errors.push({ pointer, in: 'body', detail });

  if (spec.type === 'train') {
    if (!spec.model.architecture) problem('/model/architecture', 'is required for a train job');
    if (spec.model.base) problem('/model/base', 'is not allowed for a train job (use type "finetune" to start from a model)');
    if (spec.strategy) problem('/strategy', 'applies to finetune jobs only');
  } else {
    if (!spec.model.base) problem('/model/base', 'is required for a finetune job');
    if (spec.model.architecture) problem('/model/architecture', 'is not allowed for a finetune job (the base model fixes it)');
  }
  const opt = spec.hyperparameters.optimizer;
  if (opt.name !== 'sgd' && opt.momentum !== undefined) problem('/hyperparameters/optimizer/momentum', `applies to sgd only, not ${opt.name}`);
  if (opt.name !== 'adam') {
    for (const k of ['beta1', 'beta2', 'epsilon'] as const) {
      if (opt[k] !== undefined) problem(`/hyperparameters/optimizer/${k}`, `applies to adam only, not ${opt.name}`);
    }
  }

  const roles = ['train', 'validation', 'test'] as const;
  const data: Partial<Record<(typeof roles)[number], DatasetRecord>> = {};
  for (const role of roles) {
    const id = spec.data[role];
    if (id === undefined) continue;
    const d = await store.datasets.get(id);
    if (!d) problem(`/data/${role}`, `no dataset has the id ${JSON.stringify(id)}`);
    else if (d.status !== 'ready') problem(`/data/${role}`, `dataset ${id} is ${d.status}, not ready`);
    else data[role] = d;
  }
  const train = data.train;
  for (const role of ['validation', 'test'] as const) {
    const d = data[role];
    if (!train || !d) continue;
    if (!sameShape(d.featureShape!, train.featureShape!)) {
      problem(`/data/${role}`, `examples have shape [${d.featureShape}], the train dataset's have [${train.featureShape}]`);
    } else if (d.numClasses !== train.numClasses) {
      problem(`/data/${role}`, `has ${d.numClasses} classes, the train dataset has ${train.numClasses}`);
    }
  }

  let baseModelDir: string | undefined;
  if (spec.model.base && spec.type === 'finetune') {
    const base = await store.models.get(spec.model.base);
    if (!base) problem('/model/base', `no model has the id ${JSON.stringify(spec.model.base)}`);
    else if (base.status !== 'ready') problem('/model/base', `model ${base.id} is ${base.status}, not ready`);
    else {
      baseModelDir = base.dir;
      if (train && base.inputShape && !sameShape(base.inputShape, train.featureShape!)) {
        problem('/model/base', `takes inputs of shape [${base.inputShape}], the train dataset's examples have [${train.featureShape}]`);
      }
      if (train && base.classes && base.classes.length !== train.numClasses) {
        problem('/data/train', `has ${train.numClasses} classes, base model ${base.id} predicts ${base.classes.length}; a new head for a different class count is not available yet`);
      }
    }
  }
  if (errors.length > 0 || !train) return { errors };

  const modelId = modelIdFor(jobId);
  return {
    task: {
      jobId,
      spec,
      data: {
        train: files(train),
        ...(data.validation ? { validation: files(data.validation) } : {}),
        ...(data.test ? { test: files(data.test) } : {}),
      },
      ...(baseModelDir ? { baseModelDir, baseModelId: spec.model.base } : {}),
      modelDir: artifacts.modelDir(modelId),
      modelId,
      checkpointsDir: artifacts.checkpointsDir(jobId),
    },
  };
}
