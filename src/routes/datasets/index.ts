import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { datasetFeatureDirs } from '../../artifacts/feature-cache.js';
import { loadMnist } from '../../artifacts/builtin-datasets.js';
import { PAGE_MAX_BYTES, PREVIEW_MAX_SIDE, readExamples } from '../../artifacts/dataset-examples.js';
import { classCounts, writeDatasetFiles } from '../../artifacts/dataset-files.js';
import { imageShapeOf } from '../../artifacts/image-shape.js';
import { Conversions } from '../../artifacts/ingest/conversions.js';
import { FORMAT_NAMES, FORMATS } from '../../artifacts/ingest/formats.js';
import { datasetBytes } from '../../artifacts/ingest/output-limit.js';
import { deleteWithArtifacts } from '../../artifacts/pending-deletes.js';
import { StorageQuota } from '../../artifacts/storage-quota.js';
import { receiveUpload } from '../upload-receiver.js';
import { HttpProblem, notFound, type FieldError } from '../../plugins/problem.js';
import { IdParams, Page, PageQuery, Problem } from '../../schemas/common.js';
import { CreateBuiltinDataset, CreateDataset, CreateDerivedDataset, Dataset, ExamplesPage, ExamplesQuery, UploadDatasetForm } from '../../schemas/dataset.js';
import type { DatasetRecord } from '../../store/datasets.js';
import { newId } from '../../store/ids.js';
import { invalid } from './invalid.js';
import { requireRoom } from '../quota-problem.js';
import { parseUploadForm } from './upload-form.js';

const present = (d: DatasetRecord): Dataset => {
  const base = { id: d.id, object: 'dataset' as const, name: d.name, status: d.status, source: d.source, createdAt: d.createdAt };
  const unknown = {
    numExamples: null,
    featureShape: null,
    featureDtype: null,
    imageShape: null,
    numClasses: null,
    classes: null,
    classCounts: null,
    preprocessing: null,
  };
  if (d.status === 'validating') return { ...base, ...unknown, error: null };
  if (d.status === 'failed') return { ...base, ...unknown, error: d.error };
  const { numExamples, featureShape, featureDtype, imageShape, numClasses, classes, classCounts, preprocessing } = d;
  return { ...base, numExamples, featureShape, featureDtype, imageShape, numClasses, classes, classCounts, preprocessing, error: null };
};

const MNIST_IMAGE = [28, 28, 1];
const GEOMETRY = ['scale', 'rotate', 'translate'] as const;
const OPERATIONS = ['split', 'classes', 'subset', ...GEOMETRY, 'invert', 'noise'] as const;

type Validator = ((data: unknown) => boolean) & { errors?: FastifySchemaValidationError[] | null };

const isDerived = (body: unknown) => {
  const source = (body as { source?: unknown } | null)?.source;
  return typeof source === 'object' && source !== null && 'from' in source;
};

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts, config } = app.deps;
  const tags = ['datasets'];
  // registered here rather than app-wide: only upload routes take multipart bodies
  await app.register(multipart);

  const quota = new StorageQuota({
    db: store.db,
    quotaBytes: config.tenantStorageQuotaBytes,
    datasetMaxBytes: config.datasetMaxBytes,
    imageMaxPixels: config.imageMaxPixels,
  });
  const conversions = new Conversions({
    store,
    artifacts,
    quota,
    log: app.log,
    concurrency: config.ingestConcurrency,
    maxHeapMb: config.ingestMaxHeapMb,
    leases: app.leases,
  });
  app.addHook('onClose', () => conversions.close());

  const admit = (tenant: string, neededBytes?: number) => requireRoom(quota, tenant, neededBytes);

  async function upload(req: FastifyRequest, reply: FastifyReply) {
    // a tenant with no room left is refused before the upload is received
    await admit(req.tenant);
    const id = newId('ds');
    const uploadDir = artifacts.uploadDir(id);
    const received = await receiveUpload(req, uploadDir, config);
    let form: ReturnType<typeof parseUploadForm>;
    try {
      form = parseUploadForm(received, { maxPixels: config.imageMaxPixels });
    } catch (err) {
      await artifacts.remove(uploadDir);
      throw err;
    }
    const record = await store.datasets.insertValidating({ id, name: form.name, source: form.source }, req.tenant);
    conversions.convert(id, form.job, { tenant: req.tenant, cleanup: () => artifacts.remove(uploadDir) });
    return reply.code(202).header('location', `/v1/datasets/${id}`).send(present(record));
  }

  async function derived(body: CreateDerivedDataset, tenant: string, reply: FastifyReply) {
    const { from, transform } = body.source;
    const errors: FieldError[] = [];
    const problem = (pointer: string, detail: string) => errors.push({ pointer, in: 'body', detail });
    const source = await store.datasets.get(from, tenant);
    if (!source) throw invalid([{ pointer: '/source/from', in: 'body', detail: `no dataset has the id ${JSON.stringify(from)}` }]);
    if (source.status !== 'ready') throw invalid([{ pointer: '/source/from', in: 'body', detail: `dataset ${from} is ${source.status}, not ready` }]);
    const { classes } = source;
    if (!OPERATIONS.some((op) => transform[op] !== undefined)) {
      problem('/source/transform', `names no operation; expected one or more of ${OPERATIONS.join(', ')}`);
    }
    transform.classes?.keep.forEach((name, i) => {
      if (!classes.includes(name))
        problem(
          `/source/transform/classes/keep/${i}`,
          `${JSON.stringify(name)} is not a class of dataset ${from} (${classes.map((c) => JSON.stringify(c)).join(', ')})`,
        );
    });
    const image = imageShapeOf(source, true);
    const geometric = GEOMETRY.filter((op) => transform[op] !== undefined);
    if (geometric.length > 0 && !image) {
      problem(
        `/source/transform/${geometric[0]}`,
        `needs image-like examples, but dataset ${from} has featureShape [${source.featureShape}] and no imageShape (expected [h, w], [h, w, c] or a square number of values)`,
      );
    }
    if (errors.length > 0) throw invalid(errors);
    await admit(tenant);
    // this process's copy of the source (fetched from the object store when it has none), kept until the conversion ends;
    // fetched before the record is made, so that a source the store cannot give leaves no dataset validating for ever
    const dir = artifacts.datasetDir(source.id);
    const lease = await artifacts.checkout(dir);
    const id = newId('ds');
    const record = await store.datasets.insertValidating({ id, name: body.name, source: { from, transform } }, tenant).catch(async (err: unknown) => {
      await lease.release();
      throw err;
    });
    const { numExamples, featureShape, featureDtype, imageShape, preprocessing } = source;
    conversions.convert(
      id,
      {
        kind: 'derive',
        transform,
        source: { id: source.id, dir, numExamples, featureShape, featureDtype, classes, imageShape: image, recordedImageShape: imageShape, preprocessing },
      },
      { tenant, cleanup: () => lease.release() },
    );
    return reply.code(202).header('location', `/v1/datasets/${id}`).send(present(record));
  }

  async function builtin(body: CreateBuiltinDataset, tenant: string, reply: FastifyReply) {
    const { name, source } = body;
    const data = await loadMnist(source.split, source.limit);
    const bytes = datasetBytes(data.labels.length, data.features.length / data.labels.length, 1);
    await admit(tenant, bytes);
    const id = newId('ds');
    const dir = artifacts.datasetDir(id);
    await artifacts.writeDir(dir, (tmp) => writeDatasetFiles(tmp, data.features, data.labels));
    const record = await store.datasets.insertReady(
      {
        id,
        name,
        source,
        numExamples: data.labels.length,
        featureShape: data.featureShape,
        featureDtype: 'uint8',
        imageShape: MNIST_IMAGE,
        numClasses: data.classes.length,
        classes: data.classes,
        classCounts: classCounts(data.labels, data.classes.length),
        preprocessing: data.preprocessing,
        dir,
        bytes,
      },
      tenant,
    );
    return reply.code(201).header('location', `/v1/datasets/${id}`).send(present(record));
  }

  // A JSON body is checked against the one kind of source it names (`from` or `builtin`),
  // so a mistake is reported once, against that kind, not once per kind. Multipart bodies
  // are checked field by field by parseUploadForm.
  const compile = app.validatorCompiler as FastifySchemaCompiler<unknown>;
  const validatorCompiler: FastifySchemaCompiler<unknown> = (route) => {
    if (route.httpPart !== 'body') return compile(route);
    if ((route as { contentType?: string }).contentType === 'multipart/form-data') return () => true;
    const checks = {
      builtin: compile({ ...route, schema: CreateBuiltinDataset }) as Validator,
      derived: compile({ ...route, schema: CreateDerivedDataset }) as Validator,
    };
    const check = ((data: unknown) => {
      const v = isDerived(data) ? checks.derived : checks.builtin;
      const ok = v(data);
      check.errors = v.errors;
      return ok;
    }) as Validator;
    return check;
  };

  app.post('/', {
    schema: {
      tags,
      summary: 'Register, upload or derive a dataset',
      description:
        'Three ways in, all converted once into the compact form the training child reads:\n\n' +
        '- **built-in** (JSON `{"name", "source": {"builtin": "mnist", "split": "train"|"test"}}`): ready at once, **201**.\n' +
        '- **upload** (`multipart/form-data`, e.g. `curl -F name=x -F format=csv -F file=@data.csv`): formats ' +
        FORMAT_NAMES.map(
          (f) =>
            `\`${f}\` (${FORMATS[f].doc}; files ${Object.keys(FORMATS[f].files)
              .map((k) => `\`${k}\``)
              .join(', ')})`,
        ).join(', ') +
        '. The upload streams to disk; **202** with status `validating`, then the dataset becomes `ready` or `failed` with an `error` ' +
        '{code, message, location} naming the line and column, archive entry or IDX count at fault. Beyond UPLOAD_LIMIT_BYTES: **413**; a body that sends ' +
        'nothing for UPLOAD_IDLE_TIMEOUT_SECONDS: **408** `upload_stalled`; one whose average rate is below UPLOAD_MIN_BYTES_PER_SECOND once it has run ' +
        'UPLOAD_RATE_GRACE_SECONDS: **408** `upload_too_slow`; either with the connection closed. ' +
        'A dataset larger than DATASET_MAX_BYTES once converted fails as `dataset_too_large` (computed from headers before writing where they tell, ' +
        "and checked while writing); one the tenant's storage quota cannot hold fails as `storage_quota_exceeded`.\n" +
        '- **derived** (JSON `{"name", "source": {"from": "<datasetId>", "transform": {...}}}`): split, classes, subset, scale, rotate, ' +
        'translate, invert, noise, applied in that order, deterministic under `transform.seed`; **202**, then `ready` or `failed`.\n\n' +
        'Poll `GET /v1/datasets/{id}` until the status is no longer `validating`. A tenant whose storage (datasets, models, checkpoints and prediction files) ' +
        'has reached TENANT_STORAGE_QUOTA_BYTES is refused with **409** `storage_quota_exceeded`, saying the use and the quota.',
      body: {
        content: {
          'application/json': { schema: CreateDataset },
          'multipart/form-data': { schema: UploadDatasetForm },
        },
      } as unknown as typeof CreateDataset,
      response: { 201: Dataset, 202: Dataset, 400: Problem, 408: Problem, 409: Problem, 413: Problem, 415: Problem },
    },
    validatorCompiler,
    handler: async (req, reply) => {
      if (req.isMultipart()) return upload(req, reply);
      const body = req.body as unknown;
      if (body === undefined || body === null) {
        throw invalid([{ pointer: '/', in: 'body', detail: 'is required: JSON (built-in or derived dataset) or multipart/form-data (an upload)' }]);
      }
      return isDerived(body) ? derived(body as CreateDerivedDataset, req.tenant, reply) : builtin(body as CreateBuiltinDataset, req.tenant, reply);
    },
  });

  app.get('/', {
    schema: {
      tags,
      summary: 'List datasets, newest first',
      description: 'Cursor paging: pass `nextCursor` as `after` for the next page while `hasMore` is true.',
      querystring: PageQuery,
      response: { 200: Page(Dataset) },
    },
    handler: async (req) => {
      const page = await store.datasets.list({ ...req.query, tenant: req.tenant });
      return { ...page, data: page.data.map(present) };
    },
  });

  app.get('/:id', {
    schema: {
      tags,
      summary: 'Read a dataset',
      description: 'Size, shapes, classes and examples per class once `ready`; the `error` (code, message, location) once `failed`.',
      params: IdParams,
      response: { 200: Dataset, 404: Problem },
    },
    handler: async (req) => {
      const d = await store.datasets.get(req.params.id, req.tenant);
      if (!d) throw notFound('Dataset', req.params.id, '/id');
      return present(d);
    },
  });

  app.get('/:id/examples', {
    schema: {
      tags,
      summary: 'Look at examples of a dataset',
      description:
        'Examples from `offset` in stored order, at most `limit`: index, label, class name, the stored values (`features=false` leaves them out) ' +
        `and, for image-like datasets (see \`imageShape\`), a PNG preview as a data URL, at most ${PREVIEW_MAX_SIDE} pixels a side (larger images are sampled down). ` +
        'Float images are stretched to the full grey range per picture. ' +
        `A page holds at most about ${PAGE_MAX_BYTES >> 20} MiB of JSON: with large examples it holds fewer than \`limit\`; continue from \`nextOffset\`. ` +
        "When even one example's values do not fit, 400 pointing at `features` (ask with `features=false`).",
      params: IdParams,
      querystring: ExamplesQuery,
      response: { 200: ExamplesPage, 400: Problem, 404: Problem, 409: Problem },
    },
    handler: async (req) => {
      const d = await store.datasets.get(req.params.id, req.tenant);
      if (!d) throw notFound('Dataset', req.params.id, '/id');
      if (d.status !== 'ready')
        throw new HttpProblem(409, 'not_ready', 'Dataset not ready', `dataset ${d.id} is ${d.status}; examples can be read once it is ready`);
      const { offset, limit, features } = req.query;
      const dir = artifacts.datasetDir(d.id);
      const lease = await artifacts.checkout(dir);
      const page = await readExamples({ ...d, dir }, offset, limit, features).finally(() => lease.release());
      if (!page.ok) {
        throw new HttpProblem(
          400,
          'validation',
          'The request is not valid',
          `query /features: one example of dataset ${d.id} has ${page.values} values, about ${page.exampleBytes} bytes of JSON, more than a page holds (${page.pageBytes}); ask with features=false for its preview`,
          [
            {
              pointer: '/features',
              in: 'query',
              detail: `must be false for this dataset: one example's ${page.values} values do not fit a page of ${page.pageBytes} bytes`,
            },
          ],
        );
      }
      return { data: page.data, offset, total: d.numExamples, nextOffset: page.nextOffset };
    },
  });

  app.delete('/:id', {
    schema: {
      tags,
      summary: 'Remove a dataset',
      description:
        'Refused with 409 while a queued, running or paused job uses it. A dataset still `validating` can be removed; its conversion is discarded. ' +
        'Its files and feature caches go with it; should the object store (ARTIFACTS_URL) not answer, the dataset is deleted all the same and its files are removed by the worker hosts once the store is back.',
      params: IdParams,
      response: { 204: Type.Null(), 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const d = await store.datasets.get(req.params.id, req.tenant);
      if (!d) throw notFound('Dataset', req.params.id, '/id');
      const users = await store.datasets.activeJobsUsing(d.id);
      if (users.length > 0) {
        throw new HttpProblem(409, 'in_use', 'Dataset in use', `dataset ${d.id} is used by unfinished jobs: ${users.join(', ')}; cancel them or wait`);
      }
      // its feature caches' rows go with it (ON DELETE CASCADE); their files with its own
      const features = await datasetFeatureDirs(artifacts.featuresRoot(), d.id, await store.featureCaches.basesOf(store.db, d.id));
      const dirs = [...(d.status === 'ready' ? [artifacts.datasetDir(d.id)] : []), ...features];
      await deleteWithArtifacts({ store, artifacts, log: req.log }, dirs, (q) => store.datasets.delete(q, d.id));
      return reply.code(204).send(null);
    },
  });
};

export default routes;
