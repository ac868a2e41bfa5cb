import type { Artifacts, Lease } from '../artifacts/artifacts.js';
import { DamagedInObjectStore, NotInObjectStore } from '../artifacts/object-store.js';
import type { FieldError } from '../field-error.js';
import type { JobSpec } from '../schemas/job.js';
import type { ReadyDataset } from '../store/datasets.js';
import type { ModelRecord } from '../store/models.js';
import type { Store } from '../store/store.js';
import { webhookUrlProblem } from '../webhooks/address-policy.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imageShapeOf } from '../artifacts/image-shape.js';
import { augmentedRoles, movesPixels } from './augmentation.js';
import { checkLayerNames, specProblems } from './spec-rules.js';
import { layerNames } from './layer-names.js';
import { cnnInputShape, feedShape } from './input-shape.js';
import { PREDICTIONS_MAX_BYTES } from './predictions-file.js';
import { channelProblem, describePreprocessing, predictionPreprocessing, type Preprocessing } from './preprocessing.js';
import type { DatasetFiles, TrainingData, TrainingTask } from './task.js';

/** Whether the spec names layers of its base model, which are then checked against the stored model. */
const namesLayers = (spec: JobSpec) =>
  spec.strategy?.featureLayer !== undefined || spec.strategy?.trainFrom !== undefined || spec.method?.featureLayer !== undefined;

/**
 * The layer names in a stored model's model.json, read from this process's copy by the model's id (fetched from the
 * object store when it has none; the recorded dir is the path on the host that wrote it); undefined when unreadable,
 * or damaged or missing in the store (the training child, or the host that fetches its base, then reports what is wrong).
 * A store that does not answer throws.
 */
async function storedLayerNames(artifacts: Artifacts, modelId: string): Promise<string[] | undefined> {
  const dir = artifacts.modelDir(modelId);
  let lease: Lease;
  try {
    lease = await artifacts.checkout(dir);
  } catch (err) {
    if (err instanceof DamagedInObjectStore || err instanceof NotInObjectStore) return undefined;
    throw err;
  }
  try {
    return layerNames(JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')));
  } catch {
    return undefined;
  } finally {
    await lease.release();
  }
}

/** A job trains exactly one model, so the model's id follows from the job's. */
export const modelIdFor = (jobId: string) => `mdl_${jobId.slice('job_'.length)}`;

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * A ready dataset as the child reads it, fed in `shape` (its own, or a base model's that its
 * images fit) and by `preprocessing` (its own, or the base model's convention), from `dir`: the
 * path from the id on this host, not the recorded one (that is the path on the host that wrote it).
 */
function files(d: ReadyDataset, feed: { dir: string; shape: number[]; preprocessing: Preprocessing }): DatasetFiles {
  const image = imageShapeOf(d, true);
  return {
    id: d.id,
    dir: feed.dir,
    numExamples: d.numExamples,
    featureShape: feed.shape,
    ...(image ? { imageShape: image } : {}),
    featureDtype: d.featureDtype,
    numClasses: d.numClasses,
    classes: d.classes,
    preprocessing: feed.preprocessing,
  };
}

/** Two datasets whose examples are the same kind of values: one featureShape, or one image shape whatever the layouts. */
function sameExamples(a: ReadyDataset, b: ReadyDataset): boolean {
  if (sameShape(a.featureShape, b.featureShape)) return true;
  const [x, y] = [imageShapeOf(a), imageShapeOf(b)];
  return x !== null && y !== null && sameShape(x, y);
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

  const roles = ['train', 'validation', 'test', 'source', 'target', 'targetTest', 'sourceTest', 'input'] as const;
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
    if (!sameExamples(d, train)) {
      problem(`/data/${role}`, `examples have shape [${d.featureShape}], the ${trainRole} dataset's have [${train.featureShape}]`);
    } else if ((role !== 'target' || spec.data.targetLabelled) && d.numClasses !== train.numClasses) {
      problem(`/data/${role}`, `has ${d.numClasses} classes, the ${trainRole} dataset has ${train.numClasses}`);
    }
  }
  // Flips, rotations, crops and zooms move pixels: the augmented sets must be images.
  const augment = spec.hyperparameters?.augment;
  if (augment && movesPixels(augment)) {
    for (const role of augmentedRoles(spec)) {
      const d = role === 'source' ? train : data.target;
      if (d && !imageShapeOf(d, true)) {
        problem(
          '/hyperparameters/augment',
          `flips, rotates, translates or scales images, but dataset ${d.id} (${role === 'source' ? trainRole : 'target'}) has examples of shape [${d.featureShape}] that are not images; expected only brightness, contrast or noise for it, or a dataset with an imageShape`,
        );
      }
    }
  }
  if (spec.model.architecture?.kind === 'cnn' && train && !cnnInputShape(train.featureShape)) {
    problem(
      '/model/architecture/kind',
      `cnn needs image-like examples (featureShape [h, w, c], [h, w] or a square [n]); dataset ${train.id} has [${train.featureShape}]`,
    );
  }

  // Models must take the examples and predict their classes (a finetune may ask for a new head).
  const fits = train ?? data.test;
  const fitsRole = train ? trainRole : 'test';
  const readyModel = async (id: string, pointer: string): Promise<ModelRecord | undefined> => {
    const m = await store.models.get(id, tenant);
    if (!m) problem(pointer, `no model has the id ${JSON.stringify(id)}`);
    else if (m.status !== 'ready') problem(pointer, `model ${m.id} is ${m.status}, not ready`);
    else {
      // every set a base is fed must fit it, each blamed on its own role
      let fitsAll = true;
      for (const [role, d] of Object.entries(data)) {
        const fed = feedShape(d, m.inputShape);
        if ('problem' in fed) {
          problem(role === fitsRole ? pointer : `/data/${role}`, `model ${m.id} ${fed.problem}`);
          fitsAll = false;
        }
      }
      if (fitsAll) return m;
    }
    return undefined;
  };
  const checkClasses = (m: ModelRecord, pointer: string) => {
    if (!fits || !m.classes || m.classes.length === fits.numClasses) return;
    if (spec.type === 'finetune' && spec.strategy?.newHead) return;
    if (spec.type === 'finetune') {
      problem(
        '/strategy/newHead',
        `must be true: base model ${m.id} predicts ${m.classes.length} classes, dataset ${fits.id} has ${fits.numClasses}; a new head replaces its output layer`,
      );
    } else {
      problem(pointer, `predicts ${m.classes.length} classes, the ${fitsRole} dataset ${fits.id} has ${fits.numClasses}`);
    }
  };
  const base = spec.model.base === undefined ? undefined : await readyModel(spec.model.base, '/model/base');
  if (base) checkClasses(base, '/model/base');
  if (base && namesLayers(spec)) {
    const names = await storedLayerNames(artifacts, base.id);
    if (names) checkLayerNames(spec, base.id, names, problem);
  }
  const bases: ModelRecord[] = [];
  for (const [i, id] of (spec.model.bases ?? []).entries()) {
    const m = await readyModel(id, `/model/bases/${i}`);
    if (m) checkClasses(m, `/model/bases/${i}`);
    if (m) bases.push(m);
  }
  // A base that declares its input convention is fed every dataset by it.
  const fed = base ?? bases[0];
  const convention = fed?.preprocessing ?? undefined;
  if (convention && (fits ?? data.input)) {
    const channels = fed.inputShape?.length === 3 ? fed.inputShape[2] : 1;
    const wrong = channelProblem(convention, channels);
    if (wrong) problem(base ? '/model/base' : '/model/bases/0', `declares preprocessing ${describePreprocessing(convention)}, which ${wrong}`);
  }
  if (errors.length > 0) return { errors };

  const feed = (d: ReadyDataset) => {
    const shape = fed ? feedShape(d, fed.inputShape) : undefined;
    return files(d, {
      dir: artifacts.datasetDir(d.id),
      shape: shape && 'shape' in shape ? shape.shape : d.featureShape,
      // predictions feed what the predict route feeds: the model's recorded convention or raw values, never the dataset's own
      preprocessing: spec.type === 'predict' && fed ? predictionPreprocessing(fed.preprocessing) : (convention ?? d.preprocessing),
    });
  };
  const taskData: TrainingData = {};
  if (train) taskData.train = feed(train);
  for (const role of ['validation', 'test', 'target', 'targetTest', 'sourceTest', 'input'] as const) {
    const d = data[role];
    if (d) taskData[role] = feed(d);
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
      featuresRoot: artifacts.featuresRoot(),
      ...(spec.type === 'predict' && base
        ? {
            predictions: {
              dir: artifacts.predictionsDir(jobId),
              format: spec.output?.format ?? 'jsonl',
              ...(spec.output?.topK !== undefined ? { topK: spec.output.topK } : {}),
              classes: base.classes,
              maxBytes: PREDICTIONS_MAX_BYTES,
            },
          }
        : {}),
    },
  };
}
