import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ModelCheckSlots } from '../../artifacts/model-upload/check-model.js';
import { StorageQuota } from '../../artifacts/storage-quota.js';
import { receiveUpload } from '../upload-receiver.js';
import { HttpProblem, notFound } from '../../plugins/problem.js';
import { IdParams, Page, PageQuery, Problem } from '../../schemas/common.js';
import { Model, UploadModelForm } from '../../schemas/model.js';
import type { ModelRecord } from '../../store/models.js';
import { newId } from '../../store/ids.js';
import { requireRoom } from '../quota-problem.js';
import { acceptModelUpload } from './upload.js';
import { present } from './present.js';
import predictRoutes from './predict.js';


const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts, config } = app.deps;
  const tags = ['models'];
  // registered here rather than app-wide: only upload routes take multipart bodies
  await app.register(multipart);
  await app.register(predictRoutes);
  const checks = new ModelCheckSlots(config.modelCheckConcurrency);
  const quota = new StorageQuota({ db: store.db, quotaBytes: config.tenantStorageQuotaBytes, datasetMaxBytes: config.datasetMaxBytes, imageMaxPixels: config.imageMaxPixels });

  async function readyModel(id: string, tenant: string): Promise<ModelRecord> {
    const m = await store.models.get(id, tenant);
    if (!m) throw notFound('Model', id, '/id');
    if (m.status !== 'ready') throw new HttpProblem(409, 'not_ready', 'Model not ready', `model ${id} is ${m.status}`);
    return m;
  }

  app.post('/', {
    schema: {
      tags,
      summary: 'Upload a tfjs LayersModel to fine-tune from',
      description:
        '`multipart/form-data` with `modelJson` (model.json) and `weights` (each weights file of its manifest, repeated for shards, matched by ' +
        'file name), e.g. `curl -F modelJson=@model.json -F weights=@group1-shard1of2.bin -F weights=@group1-shard2of2.bin`. ' +
        'Checked while the request waits: the manifest against the files (every weight present, sizes exact), no NaN or infinity, and the ' +
        'topology built by TensorFlow.js in a child process, one input and one output of shape [?, classes]. **201** with the `ready` model, ' +
        'stored as model.json + one weights.bin; else **400** whose `errors` point into the upload (`/modelJson/weightsManifest/0/weights/3`, `/weights`). ' +
        '`classes` and `preprocessing` come from `userDefinedMetadata.tfjsAdapt` when present (a model downloaded from this service has them); ' +
        'otherwise classes are "0".."n-1" and preprocessing is null (fine-tuning then feeds the dataset\'s own preprocessing). ' +
        'model.json may nest at most 100 levels (**400** `too_deep`). At most MODEL_CHECK_CONCURRENCY uploads are checked at once; ' +
        'beyond, **503** `model_checks_busy` with Retry-After, before the body is read. A tenant whose storage quota cannot hold the model: **409** `storage_quota_exceeded`.',
      body: { content: { 'multipart/form-data': { schema: UploadModelForm } } } as unknown as typeof UploadModelForm,
      response: { 201: Model, 400: Problem, 409: Problem, 413: Problem, 415: Problem, 503: Problem },
    },
    // the multipart body is read and checked by the handler, field by field
    validatorCompiler: (route) => (route.httpPart === 'body' ? () => true : app.validatorCompiler!(route)),
    handler: async (req, reply) => {
      if (!req.isMultipart()) {
        throw new HttpProblem(415, 'unsupported_media_type', 'Expected multipart/form-data', 'upload a model as multipart/form-data: curl -F modelJson=@model.json -F weights=@weights.bin');
      }
      const release = checks.take();
      if (!release) {
        reply.header('retry-after', '5');
        throw new HttpProblem(503, 'model_checks_busy', 'Model checks busy', `${checks.size} model uploads are being checked already (MODEL_CHECK_CONCURRENCY); try again in a few seconds`);
      }
      const admit = (bytes: number) => requireRoom(quota, req.tenant, bytes);
      const id = newId('mdl');
      const uploadDir = artifacts.uploadDir(id);
      try {
        await admit(1);
        const received = await receiveUpload(req, uploadDir, config.uploadLimitBytes);
        const accepted = await acceptModelUpload(received, artifacts.modelDir(id), { artifacts, maxHeapMb: config.ingestMaxHeapMb, admit });
        const record: Omit<ModelRecord, 'createdAt'> = {
          id,
          name: accepted.name,
          status: 'ready',
          jobId: null,
          baseModelId: null,
          datasetIds: {},
          metrics: null,
          inputShape: accepted.inputShape,
          classes: accepted.classes,
          preprocessing: accepted.preprocessing,
          dir: artifacts.modelDir(id),
        };
        await store.models.insert(store.db, { ...record, bytes: accepted.bytes }, req.tenant);
        const m = (await store.models.get(id))!;
        return reply.code(201).header('location', `/v1/models/${id}`).send(present(m));
      } finally {
        release();
        await artifacts.remove(uploadDir);
      }
    },
  });

  app.get('/', {
    schema: { tags, summary: 'List models, newest first', description: 'Trained (with `jobId`) and uploaded models. Cursor paging: pass `nextCursor` as `after` while `hasMore` is true.', querystring: PageQuery, response: { 200: Page(Model) } },
    handler: async (req) => {
      const page = await store.models.list(req.query.limit, req.query.after, req.tenant);
      return { ...page, data: page.data.map(present) };
    },
  });

  app.get('/:id', {
    schema: { tags, summary: 'Read a model and its lineage', description: 'Lineage: the job that trained it (`jobId`), the model it was fine-tuned from (`baseModelId`), its datasets by role, and the final metrics; `files` are the download URLs.', params: IdParams, response: { 200: Model, 404: Problem } },
    handler: async (req) => {
      const m = await store.models.get(req.params.id, req.tenant);
      if (!m) throw notFound('Model', req.params.id, '/id');
      return present(m);
    },
  });

  app.delete('/:id', {
    schema: {
      tags,
      summary: 'Remove a model',
      description: 'Refused with 409 while a queued, running or paused job starts from it (`model.base`).',
      params: IdParams,
      response: { 204: Type.Null(), 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const m = await store.models.get(req.params.id, req.tenant);
      if (!m) throw notFound('Model', req.params.id, '/id');
      const users = await store.models.activeJobsUsing(m.id);
      if (users.length > 0) {
        throw new HttpProblem(409, 'in_use', 'Model in use', `model ${m.id} is the base of unfinished jobs: ${users.join(', ')}; cancel them or wait`);
      }
      await store.models.delete(m.id);
      await artifacts.remove(m.dir);
      return reply.code(204).send(null);
    },
  });

  app.get('/:id/model.json', {
    schema: {
      tags,
      summary: 'Download the model topology and weight manifest',
      description: 'Standard tfjs LayersModel JSON: `tf.loadLayersModel(<this url>)` fetches weights.bin beside it. `userDefinedMetadata.tfjsAdapt` holds inputShape, classes and preprocessing (input = raw * scale + offset); outputs are logits. 409 while the model is not `ready`.',
      params: IdParams,
      response: { 200: Type.Unknown(), 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const m = await readyModel(req.params.id, req.tenant);
      const text = await readFile(join(m.dir, 'model.json'), 'utf8');
      return reply.type('application/json').send(text);
    },
  });

  app.get('/:id/weights.bin', {
    schema: {
      tags,
      summary: 'Download the model weights',
      description: 'The binary weights file named by model.json\'s `weightsManifest` (little-endian float32, in manifest order); `tf.loadLayersModel` fetches it itself. 409 while the model is not `ready`.',
      params: IdParams,
      response: { 200: Type.Unsafe<unknown>({ type: 'string', format: 'binary' }), 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const m = await readyModel(req.params.id, req.tenant);
      const file = join(m.dir, 'weights.bin');
      const { size } = await stat(file);
      return reply.type('application/octet-stream').header('content-length', size).send(createReadStream(file));
    },
  });
};

export default routes;
