/**
 * A training task's files on the host that runs it. The task names directories as the process
 * that resolved it saw them; with an object store (ARTIFACTS_URL) that process may be another
 * machine, so the worker host rebuilds every path from the task's ids under its own root and
 * fetches what it lacks (datasets, bases, the job's checkpoints, the feature caches of its base
 * and training set) before the child starts; the child's checkpoints, feature caches, model and
 * predictions are published by the host (artifacts.publish) as they appear. A checkpoint or feature
 * cache the store holds damaged is passed over, with a warning for the job's events: a retry would
 * read the same bytes (see Artifacts.checkoutChildren). A dataset or base model the store holds damaged
 * or not at all cannot be done without, so it fails the job at once (dataset_corrupt, invalid_model), never retried.
 * Without an object store every process shares one directory and the task is used as it is.
 */
import { TrainingError, type DatasetFiles, type TrainingData, type TrainingTask } from '../jobs/task.js';
import type { Artifacts, Lease } from './artifacts.js';
import { DamagedInObjectStore, NotInObjectStore } from './object-store.js';
import { featureCachesDir } from './feature-cache.js';

export interface CheckedOutTask {
  /** the task with this host's paths */
  task: TrainingTask;
  /** lets this host's cache evict the task's copies again */
  release(): Promise<void>;
  /** a message per checkpoint or feature cache passed over as damaged in the store, for the job's `warn` logs */
  warnings: string[];
}

export async function checkoutTask(artifacts: Artifacts, task: TrainingTask): Promise<CheckedOutTask> {
  if (!artifacts.isRemote) return { task, release: () => Promise.resolve(), warnings: [] };
  const data: TrainingData = {};
  for (const role of Object.keys(task.data) as (keyof TrainingData)[]) {
    const d = task.data[role];
    if (d) data[role] = { ...d, dir: artifacts.datasetDir(d.id) };
  }
  const local: TrainingTask = {
    ...task,
    data,
    ...(task.baseModelId !== undefined ? { baseModelDir: artifacts.modelDir(task.baseModelId) } : {}),
    ...(task.baseModelIds !== undefined ? { baseModelDirs: task.baseModelIds.map((id) => artifacts.modelDir(id)) } : {}),
    modelDir: artifacts.modelDir(task.modelId),
    checkpointsDir: artifacts.checkpointsDir(task.jobId),
    ...(task.predictions ? { predictions: { ...task.predictions, dir: artifacts.predictionsDir(task.jobId) } } : {}),
    ...(task.featuresRoot !== undefined ? { featuresRoot: artifacts.featuresRoot() } : {}),
  };
  const leases: Lease[] = [];
  const warnings: string[] = [];
  const release = async () => {
    await Promise.all(leases.splice(0).map((l) => l.release()));
  };
  try {
    for (const input of inputs(local)) {
      leases.push(
        await artifacts.checkout(input.dir).catch((err: unknown) => {
          // missing is as final as damaged: a record is ready only once the store holds its files, and one in use cannot be deleted
          if (err instanceof NotInObjectStore)
            throw new TrainingError(
              input.code,
              `${input.what} is not in the object store: ${err.message}. The job cannot run without it, and a retry would not find it either`,
              { param: input.param },
            );
          if (!(err instanceof DamagedInObjectStore)) throw err;
          throw new TrainingError(
            input.code,
            `${input.what} is damaged in the object store: ${err.message}. The job cannot run without it, and a retry would read the same bytes`,
            { param: input.param },
          );
        }),
      );
    }
    const checkpoints = await artifacts.checkoutChildren(local.checkpointsDir);
    leases.push(checkpoints);
    for (const { name, problem } of checkpoints.passedOver)
      warnings.push(
        `checkpoint ${name} is damaged in the object store and was passed over: ${problem}. ` +
          'The job resumes from the newest checkpoint that is whole, or from the start when there is none',
      );
    // the child reads a cache of its base on its training set when one fits (workers/training/feature-cache.ts)
    if (local.featuresRoot !== undefined && local.baseModelId !== undefined && data.train) {
      const caches = await artifacts.checkoutChildren(featureCachesDir(local.featuresRoot, local.baseModelId, data.train.id));
      leases.push(caches);
      for (const { name, problem } of caches.passedOver)
        warnings.push(`feature cache ${name} is damaged in the object store and was passed over: ${problem}. If this job uses it, it is built again`);
    }
  } catch (err) {
    await release();
    if (err instanceof TrainingError) throw err;
    throw unavailable("fetch the job's datasets, base models, checkpoints and feature caches", err);
  }
  return { task: local, release, warnings };
}

/** A dataset or base model a task cannot run without, and the error a copy the store holds damaged fails the job with. */
interface Input {
  dir: string;
  what: string;
  code: 'dataset_corrupt' | 'invalid_model';
  /** the spec field that names it */
  param: string;
}

/** The task's datasets and base models, each once (under the first field that names it). */
function inputs(task: TrainingTask): Input[] {
  const found = new Map<string, Input>();
  const add = (input: Input) => {
    if (!found.has(input.dir)) found.set(input.dir, input);
  };
  for (const [role, d] of Object.entries(task.data) as [keyof TrainingData, DatasetFiles | undefined][]) {
    // `train` is the spec's data.source in a domain_adaptation job (TrainingData)
    const field = role === 'train' && task.spec.type === 'domain_adaptation' ? 'source' : role;
    if (d) add({ dir: d.dir, what: `dataset ${d.id}`, code: 'dataset_corrupt', param: `/data/${field}` });
  }
  if (task.baseModelDir !== undefined) add({ dir: task.baseModelDir, what: `base model ${task.baseModelId}`, code: 'invalid_model', param: '/model/base' });
  task.baseModelDirs?.forEach((dir, i) => add({ dir, what: `base model ${task.baseModelIds?.[i]}`, code: 'invalid_model', param: `/model/bases/${i}` }));
  return [...found.values()];
}

/** An object store that cannot be reached fails the attempt, never the job: it is retried, from the last checkpoint the store holds. */
export function unavailable(what: string, err: unknown): TrainingError {
  return new TrainingError(
    'artifacts_unavailable',
    `could not ${what} (the object store of ARTIFACTS_URL): ${(err as Error).message}; the attempt is retried from the last checkpoint the store holds`,
    { retryable: true },
  );
}
