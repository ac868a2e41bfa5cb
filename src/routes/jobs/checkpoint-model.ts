/**
 * POST /v1/jobs/{id}/checkpoints/{epoch}/model: a checkpoint kept as a model of its own, as
 * users of fine-tuning APIs expect (the best epoch rather than the last, a paused job's state).
 * The checkpoint's model.json and weights.bin are copied, so the model outlives the job's
 * checkpoints; it counts against the tenant's storage quota like any other model.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { NotInObjectStore } from '../../artifacts/object-store.js';
import { removeUnowned } from '../../artifacts/pending-deletes.js';
import { StorageQuota } from '../../artifacts/storage-quota.js';
import { HttpProblem, notFound } from '../../plugins/problem.js';
import { Problem } from '../../schemas/common.js';
import { Model } from '../../schemas/model.js';
import { newId } from '../../store/ids.js';
import type { ModelRecord } from '../../store/models.js';
import { present } from '../models/present.js';
import { requireRoom } from '../quota-problem.js';

const FILES = ['model.json', 'weights.bin'];

const Params = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
  epoch: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    examples: [2],
    description: 'the epoch of the checkpoint, as GET /v1/jobs/{id}/checkpoints lists it; its last checkpoint when there are several',
  }),
});

interface Metadata {
  inputShape: number[];
  classes: string[];
  preprocessing: { scale: number; offset: number };
}

/** What the training child writes into every model.json it saves (workers/training/models.ts ModelMetadata). */
function metadataOf(json: unknown): Metadata | undefined {
  const m = (json as { userDefinedMetadata?: { tfjsAdapt?: Partial<Metadata> } } | null)?.userDefinedMetadata?.tfjsAdapt;
  const fits =
    Array.isArray(m?.inputShape) &&
    m.inputShape.every(Number.isInteger) &&
    Array.isArray(m.classes) &&
    m.classes.every((c) => typeof c === 'string') &&
    typeof m.preprocessing?.scale === 'number' &&
    typeof m.preprocessing.offset === 'number';
  return fits ? (m as Metadata) : undefined;
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts, config } = app.deps;
  const quota = new StorageQuota({
    db: store.db,
    quotaBytes: config.tenantStorageQuotaBytes,
    datasetMaxBytes: config.datasetMaxBytes,
    imageMaxPixels: config.imageMaxPixels,
  });

  app.post('/:id/checkpoints/:epoch/model', {
    schema: {
      tags: ['jobs', 'models'],
      summary: 'Keep a checkpoint as a model',
      description:
        'Copies the checkpoint of `epoch` (its last, when a pause also wrote one within it) into a new model: **201** with the model, `ready`, ' +
        "its lineage the job's (jobId, base, datasets) and its metrics the checkpoint's. It can be downloaded, fine-tuned from and asked for predictions like any model, " +
        "and stays when the job is deleted. **404** for another tenant's or an unknown job, or an epoch without a checkpoint (`/epoch`, with the epochs that have one); " +
        '**409** `checkpoint_gone` when its files are no longer there, `artifact_damaged` when the object store (ARTIFACTS_URL) holds them damaged (the detail names the object), ' +
        "`storage_quota_exceeded` when the tenant's quota has no room for the copy.",
      params: Params,
      response: { 201: Model, 400: Problem, 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const { id, epoch } = req.params;
      const job = await store.jobs.get(id, req.tenant);
      if (!job) throw notFound('Job', id, '/id');
      const checkpoint = await store.checkpoints.ofEpoch(job.id, epoch);
      if (!checkpoint) {
        const epochs = [...new Set((await store.checkpoints.list(job.id)).map((c) => c.epoch))];
        const detail = `job ${job.id} has no checkpoint of epoch ${epoch}; ${epochs.length > 0 ? `it has checkpoints of epochs ${epochs.join(', ')}` : 'it has no checkpoints yet'}`;
        throw new HttpProblem(404, 'checkpoint_not_found', 'Checkpoint not found', detail, [
          { pointer: '/epoch', in: 'path', detail: epochs.length > 0 ? `expected one of ${epochs.join(', ')}` : 'the job has no checkpoints' },
        ]);
      }
      const gone = (why: string) =>
        new HttpProblem(409, 'checkpoint_gone', 'Checkpoint files gone', `the checkpoint of epoch ${epoch} (step ${checkpoint.step}) of job ${job.id} ${why}`);
      // by ids under this process's root, never the path the worker host recorded: with an object store that host may be another machine
      const from = artifacts.checkpointDir(job.id, basename(checkpoint.path));
      const modelId = newId('mdl');
      const dir = artifacts.modelDir(modelId);
      // copied first (with an object store, from it, checked against its manifest), published only once it is a model that fits the quota
      const { bytes, metadata } = await artifacts.writeDir(dir, async (tmp) => {
        try {
          await artifacts.copyFiles(from, FILES, tmp);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw gone('is no longer on disk');
          if (err instanceof NotInObjectStore) throw gone('is no longer in the object store');
          throw err;
        }
        let bytes = 0;
        for (const f of FILES) bytes += (await stat(join(tmp, f))).size;
        let metadata: Metadata | undefined;
        try {
          metadata = metadataOf(JSON.parse(await readFile(join(tmp, 'model.json'), 'utf8')));
        } catch (err) {
          throw gone(`has a model.json that is not JSON (${(err as Error).message})`);
        }
        if (!metadata) throw gone('has no tfjsAdapt metadata in its model.json (input shape, classes, preprocessing)');
        await requireRoom(quota, req.tenant, bytes);
        return { bytes, metadata };
      });
      const record: Omit<ModelRecord, 'createdAt' | 'source' | 'error'> = {
        id: modelId,
        name: `${job.spec.metadata?.name ?? `${job.type} ${job.id}`} epoch ${checkpoint.epoch}`,
        status: 'ready',
        jobId: job.id,
        baseModelId: job.spec.model?.base ?? null,
        datasetIds: Object.fromEntries(Object.entries(job.spec.data).filter((e): e is [string, string] => typeof e[1] === 'string')),
        metrics: { ...checkpoint.metrics, epoch: checkpoint.epoch, step: checkpoint.step },
        inputShape: metadata.inputShape,
        classes: metadata.classes,
        preprocessing: metadata.preprocessing,
        dir,
      };
      try {
        await store.models.insert(store.db, { ...record, bytes }, req.tenant);
      } catch (err) {
        await removeUnowned({ store, artifacts, log: req.log }, [dir]);
        throw err;
      }
      const m = await store.models.get(modelId, req.tenant);
      if (!m) throw notFound('Model', modelId);
      return reply.code(201).header('location', `/v1/models/${modelId}`).send(present(m));
    },
  });
};

export default routes;
