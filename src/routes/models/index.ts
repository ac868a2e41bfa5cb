import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { modelFeaturesDir } from '../../artifacts/feature-cache.js';
import { ModelCheckSlots } from '../../artifacts/model-upload/check-model.js';
import { deleteWithArtifacts, removeUnowned } from '../../artifacts/pending-deletes.js';
import { StorageQuota } from '../../artifacts/storage-quota.js';
import { receiveUpload } from '../upload-receiver.js';
import { fieldsProblem, HttpProblem, notFound } from '../../plugins/problem.js';
import { IdParams, Page, PageQuery, Problem } from '../../schemas/common.js';
import { ImportModel, Model, UploadModelForm } from '../../schemas/model.js';
import type { ModelRecord } from '../../store/models.js';
import { newId } from '../../store/ids.js';
import { requireRoom } from '../quota-problem.js';
import { runModelImport } from './import.js';
import { acceptModelUpload } from './upload.js';
import { present } from './present.js';
import predictRoutes from './predict.js';

/** How long one file of a model import may take to arrive. */
const IMPORT_FETCH_TIMEOUT_MS = 120_000;

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts, config } = app.deps;
  const tags = ['models'];
  // registered here rather than app-wide: only upload routes take multipart bodies
  await app.register(multipart);
  await app.register(predictRoutes);
  const checks = new ModelCheckSlots(config.modelCheckConcurrency);
  const quota = new StorageQuota({
    db: store.db,
    quotaBytes: config.tenantStorageQuotaBytes,
    datasetMaxBytes: config.datasetMaxBytes,
    imageMaxPixels: config.imageMaxPixels,
  });

  async function readyModel(id: string, tenant: string): Promise<ModelRecord> {
    const m = await store.models.get(id, tenant);
    if (!m) throw notFound('Model', id, '/id');
    if (m.status !== 'ready') throw new HttpProblem(409, 'not_ready', 'Model not ready', `model ${id} is ${m.status}`);
    return m;
  }

  /** One model's upload or import, holding a check slot; a busy service answers 503 before reading the body. */
  function takeSlot(reply: FastifyReply): () => void {
    const release = checks.take();
    if (release) return release;
    reply.header('retry-after', '5');
    throw new HttpProblem(
      503,
      'model_checks_busy',
      'Model checks busy',
      `${checks.size} model uploads are being checked already (MODEL_CHECK_CONCURRENCY); try again in a few seconds`,
    );
  }

  async function upload(req: FastifyRequest, reply: FastifyReply) {
    const release = takeSlot(reply);
    const admit = (bytes: number) => requireRoom(quota, req.tenant, bytes);
    const id = newId('mdl');
    const uploadDir = artifacts.uploadDir(id);
    try {
      await admit(1);
      const received = await receiveUpload(req, uploadDir, config);
      const accepted = await acceptModelUpload(received, artifacts.modelDir(id), { artifacts, maxHeapMb: config.ingestMaxHeapMb, admit });
      const record = {
        id,
        name: accepted.name,
        status: 'ready' as const,
        jobId: null,
        baseModelId: null,
        datasetIds: {},
        metrics: null,
        inputShape: accepted.inputShape,
        classes: accepted.classes,
        preprocessing: accepted.preprocessing,
        dir: artifacts.modelDir(id),
      };
      try {
        await store.models.insert(store.db, { ...record, bytes: accepted.bytes }, req.tenant);
      } catch (err) {
        await removeUnowned({ store, artifacts, log: req.log }, [record.dir]);
        throw err;
      }
      const m = await store.models.get(id);
      if (!m) throw notFound('Model', id);
      return reply.code(201).header('location', `/v1/models/${id}`).send(present(m));
    } finally {
      release();
      await artifacts.remove(uploadDir);
    }
  }

  async function importFromUrl(body: ImportModel, req: FastifyRequest, reply: FastifyReply) {
    let url: URL | undefined;
    try {
      url = new URL(body.source.url);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw fieldsProblem({
        status: 400,
        slug: 'validation',
        title: 'The request is not valid',
        errors: [{ pointer: '/source/url', in: 'body', detail: 'must be an absolute http or https URL of a model.json' }],
      });
    }
    const release = takeSlot(reply);
    const id = newId('mdl');
    const dir = artifacts.modelDir(id);
    try {
      await requireRoom(quota, req.tenant, 1);
      const name = body.name?.trim() || 'imported model';
      await store.models.insert(
        store.db,
        {
          id,
          name,
          status: 'validating',
          jobId: null,
          baseModelId: null,
          datasetIds: {},
          metrics: null,
          inputShape: null,
          classes: null,
          preprocessing: body.preprocessing ?? null,
          dir,
          source: { url: url.href },
        },
        req.tenant,
      );
    } catch (err) {
      release();
      throw err;
    }
    const tenant = req.tenant;
    // held while it runs, so that should this process die the sweep fails it as interrupted
    app.leases.hold(id);
    // after the 202: the client polls GET /v1/models/{id}
    void runModelImport(
      { id, url: url.href, name: body.name?.trim() || 'imported model', ...(body.preprocessing ? { preprocessing: body.preprocessing } : {}) },
      dir,
      {
        artifacts,
        models: store.models,
        unowned: { store, artifacts, log: req.log },
        maxHeapMb: config.ingestMaxHeapMb,
        admit: (bytes) => requireRoom(quota, tenant, bytes),
        allowedHosts: config.modelImportAllowedHosts,
        maxBytes: config.uploadLimitBytes,
        timeoutMs: IMPORT_FETCH_TIMEOUT_MS,
      },
    ).finally(() => {
      app.leases.release(id);
      release();
    });
    const m = (await store.models.get(id))!;
    return reply.code(202).header('location', `/v1/models/${id}`).send(present(m));
  }

  app.post('/', {
    schema: {
      tags,
      summary: 'Upload a tfjs LayersModel to fine-tune from, or import one from a URL',
      description:
        'Two ways in:\n\n' +
        '- **upload** (`multipart/form-data` with `modelJson` (model.json) and `weights` (each weights file of its manifest, repeated for shards, matched by ' +
        'file name), e.g. `curl -F modelJson=@model.json -F weights=@group1-shard1of2.bin -F weights=@group1-shard2of2.bin`, optionally `name` and ' +
        '`preprocessing` (JSON `{"scale", "offset"}`)): checked while the request waits, **201** with the `ready` model; else **400** whose `errors` point into ' +
        'the upload (`/modelJson/weightsManifest/0/weights/3`, `/weights`, `/modelJson/modelTopology/model_config/config/layers/17`).\n' +
        '- **import** (JSON `{"name", "source": {"url"}, "preprocessing"}`): **202** with the model `validating`; the service fetches model.json and then ' +
        'each weights file its manifest names, relative to it, from global unicast addresses only (the host is resolved once and only those addresses are ' +
        'connected to; hosts listed in MODEL_IMPORT_ALLOWED_HOSTS may be anywhere), following at most 3 redirects, within UPLOAD_LIMIT_BYTES in all. ' +
        'Poll `GET /v1/models/{id}`: it becomes `ready`, or `failed` with an `error` {code, message, pointer} (`/source/url`, ' +
        '`/modelJson/weightsManifest/0/paths/1`, or a pointer into model.json).\n\n' +
        'Either way the same checks: the manifest against the files (every weight present, sizes exact), no NaN or infinity, every layer one that can be ' +
        'trained (Conv2D, DepthwiseConv2D, SeparableConv2D, BatchNormalization, ReLU, ZeroPadding2D, Add, Concatenate, Global/Average/MaxPooling2D, Dropout, ' +
        'Flatten, Reshape, Activation, Dense, and nested models of them; convolutions undilated, channels_last), refused as `untrainable_layers` naming ' +
        "each layer's class, name and place, and the topology built by TensorFlow.js in a child process, one input and one output of shape [?, classes]. " +
        'Weights quantized to uint8, uint16 or float16 are stored dequantized as float32 (what training reads and a download gives). ' +
        'The model is stored as model.json (its userDefinedMetadata kept) + one weights.bin. ' +
        '`classes` and `preprocessing` come from `userDefinedMetadata.tfjsAdapt` when present (a model downloaded from this service has them); ' +
        'a `preprocessing` given with the upload or import wins; otherwise classes are "0".."n-1" and preprocessing is null (fine-tuning then feeds the ' +
        "dataset's own preprocessing). model.json may nest at most 100 levels (**400** `too_deep`). At most MODEL_CHECK_CONCURRENCY uploads and imports " +
        'are checked at once; beyond, **503** `model_checks_busy` with Retry-After, before the body is read. An upload whose body sends nothing for ' +
        'UPLOAD_IDLE_TIMEOUT_SECONDS: **408** `upload_stalled`; one whose average rate is below UPLOAD_MIN_BYTES_PER_SECOND once it has run ' +
        'UPLOAD_RATE_GRACE_SECONDS: **408** `upload_too_slow`; either with the connection closed. A tenant whose storage quota cannot hold the ' +
        'model: **409** `storage_quota_exceeded` (an import then fails with that code).',
      body: {
        content: {
          'application/json': { schema: ImportModel },
          'multipart/form-data': { schema: UploadModelForm },
        },
      } as unknown as typeof ImportModel,
      response: { 201: Model, 202: Model, 400: Problem, 408: Problem, 409: Problem, 413: Problem, 415: Problem, 503: Problem },
    },
    // a multipart body is read and checked by the handler, field by field; JSON by its schema
    validatorCompiler: (route) =>
      route.httpPart === 'body' && (route as { contentType?: string }).contentType === 'multipart/form-data' ? () => true : app.validatorCompiler!(route),
    handler: async (req, reply) => {
      if (req.isMultipart()) return upload(req, reply);
      if (req.body === undefined || req.body === null) {
        throw new HttpProblem(
          415,
          'unsupported_media_type',
          'Expected multipart/form-data or JSON',
          'upload a model as multipart/form-data (curl -F modelJson=@model.json -F weights=@weights.bin) or import one with JSON {"source": {"url": "https://.../model.json"}}',
        );
      }
      return importFromUrl(req.body, req, reply);
    },
  });

  app.get('/', {
    schema: {
      tags,
      summary: 'List models, newest first',
      description: 'Trained (with `jobId`) and uploaded models. Cursor paging: pass `nextCursor` as `after` while `hasMore` is true.',
      querystring: PageQuery,
      response: { 200: Page(Model) },
    },
    handler: async (req) => {
      const page = await store.models.list({ ...req.query, tenant: req.tenant });
      return { ...page, data: page.data.map(present) };
    },
  });

  app.get('/:id', {
    schema: {
      tags,
      summary: 'Read a model and its lineage',
      description:
        'Lineage: the job that trained it (`jobId`), the model it was fine-tuned from (`baseModelId`), its datasets by role, and the final metrics; `files` are the download URLs.',
      params: IdParams,
      response: { 200: Model, 404: Problem },
    },
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
      description:
        'Refused with 409 while a queued, running or paused job starts from it (`model.base`). ' +
        'Its files and feature caches go with it; should the object store (ARTIFACTS_URL) not answer, the model is deleted all the same and its files are removed by the worker hosts once the store is back.',
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
      // its feature caches' rows go with it (ON DELETE CASCADE); their files with its own
      const dirs = [artifacts.modelDir(m.id), modelFeaturesDir(artifacts.featuresRoot(), m.id)];
      await deleteWithArtifacts({ store, artifacts, log: req.log }, dirs, (q) => store.models.delete(q, m.id));
      return reply.code(204).send(null);
    },
  });

  app.get('/:id/model.json', {
    schema: {
      tags,
      summary: 'Download the model topology and weight manifest',
      description:
        'Standard tfjs LayersModel JSON: `tf.loadLayersModel(<this url>)` fetches weights.bin beside it. `userDefinedMetadata.tfjsAdapt` holds inputShape, classes and preprocessing (input = raw * scale + offset); outputs are logits. 409 while the model is not `ready`, and `artifact_damaged` when the object store (ARTIFACTS_URL) holds its files damaged (the detail names the object).',
      params: IdParams,
      response: { 200: Type.Unknown(), 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const m = await readyModel(req.params.id, req.tenant);
      const { body, bytes } = await artifacts.openFile(artifacts.modelDir(m.id), 'model.json');
      return reply.type('application/json').header('content-length', bytes).send(body);
    },
  });

  app.get('/:id/weights.bin', {
    schema: {
      tags,
      summary: 'Download the model weights',
      description:
        "The binary weights file named by model.json's `weightsManifest` (little-endian float32, in manifest order); `tf.loadLayersModel` fetches it itself. 409 while the model is not `ready`, and `artifact_damaged` when the object store (ARTIFACTS_URL) holds its files damaged (the detail names the object).",
      params: IdParams,
      response: { 200: Type.Unsafe<unknown>({ type: 'string', format: 'binary' }), 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const m = await readyModel(req.params.id, req.tenant);
      // streamed through the API (with an object store, from it): the bucket stays private and the tenant check stays here
      const { body, bytes } = await artifacts.openFile(artifacts.modelDir(m.id), 'weights.bin');
      return reply.type('application/octet-stream').header('content-length', bytes).send(body);
    },
  });
};

export default routes;
