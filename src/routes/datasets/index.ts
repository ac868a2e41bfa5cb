import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { loadMnist } from '../../artifacts/builtin-datasets.js';
import { readExamples } from '../../artifacts/dataset-examples.js';
import { classCounts, writeDatasetFiles } from '../../artifacts/dataset-files.js';
import { imageShapeOf } from '../../artifacts/image-shape.js';
import { IngestError } from '../../artifacts/ingest/ingest-error.js';
import type { IngestJob, IngestRequest, IngestResult } from '../../artifacts/ingest/job.js';
import { IngestRunner } from '../../artifacts/ingest/ingest-runner.js';
import { receiveUpload } from '../../artifacts/upload-receiver.js';
import { HttpProblem, notFound, type FieldError } from '../../plugins/problem.js';
import { IdParams, Page, PageQuery, Problem } from '../../schemas/common.js';
import {
  CreateBuiltinDataset,
  CreateDataset,
  CreateDerivedDataset,
  Dataset,
  type DatasetError,
  ExamplesPage,
  ExamplesQuery,
  UploadDatasetForm,
} from '../../schemas/dataset.js';
import type { DatasetRecord } from '../../store/datasets.js';
import { newId } from '../../store/ids.js';
import { ConversionLeases } from './conversion-leases.js';
import { parseUploadForm } from './upload-form.js';

const present = (d: DatasetRecord): Dataset => ({
  id: d.id,
  object: 'dataset',
  name: d.name,
  status: d.status,
  source: d.source,
  numExamples: d.numExamples,
  featureShape: d.featureShape,
  featureDtype: d.featureDtype,
  imageShape: d.imageShape,
  numClasses: d.numClasses,
  classes: d.classes,
  classCounts: d.classCounts,
  preprocessing: d.preprocessing,
  error: d.error,
  createdAt: d.createdAt,
});

const MNIST_IMAGE = [28, 28, 1];
const GEOMETRY = ['scale', 'rotate', 'translate'] as const;
const OPERATIONS = ['split', 'classes', 'subset', ...GEOMETRY, 'invert', 'noise'] as const;

const invalid = (errors: FieldError[]) =>
  new HttpProblem(400, 'validation', 'The request is not valid', `body ${errors[0]!.pointer} ${errors[0]!.detail}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`, errors);

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

  const runner = new IngestRunner(config.ingestConcurrency);
  const converting = new Set<Promise<void>>();
  const leases = new ConversionLeases({ store, artifacts, log: app.log });
  app.addHook('onReady', () => leases.start());
  app.addHook('onClose', async () => {
    await runner.close();
    await Promise.allSettled([...converting]);
    await leases.stop();
  });

  /** Converts in the background; the dataset ends `ready` or `failed`, never stuck `validating`. */
  function convert(id: string, job: IngestRequest, cleanup?: () => Promise<void>): void {
    // the upload goes before the outcome is recorded: a client that sees ready or failed sees no leftovers
    const removeUpload = () => cleanup?.().catch((e) => app.log.warn({ err: e, datasetId: id }, 'could not remove the upload'));
    leases.hold(id);
    const task = (async () => {
      const dir = artifacts.datasetDir(id);
      try {
        let result: IngestResult | undefined;
        await artifacts.writeDir(dir, async (tmp) => {
          result = await runner.run({ ...job, outDir: tmp } as IngestJob);
        });
        const r = result!;
        await removeUpload();
        const ready = await store.datasets.markReady(id, {
          numExamples: r.numExamples,
          featureShape: r.featureShape,
          featureDtype: r.featureDtype,
          imageShape: r.imageShape,
          numClasses: r.classes.length,
          classes: r.classes,
          classCounts: r.classCounts,
          preprocessing: r.preprocessing,
          dir,
        });
        // deleted while it was converting: the files have no owner
        if (!ready) await artifacts.remove(dir);
      } catch (err) {
        await removeUpload();
        let error: DatasetError;
        if (err instanceof IngestError) {
          error = err.toJSON();
        } else if (job.kind === 'derive' && !(await store.datasets.get(job.source.id).catch(() => null))) {
          error = { code: 'source_removed', message: `dataset ${job.source.id} was deleted while this dataset was being derived from it` };
        } else {
          app.log.error({ err, datasetId: id }, 'dataset conversion failed');
          error = { code: 'internal', message: 'converting the dataset failed on the server (it has been logged); try again' };
        }
        await store.datasets.markFailed(id, error).catch((e) => app.log.error({ err: e, datasetId: id }, 'could not record the failed conversion'));
      }
    })();
    converting.add(task);
    void task.finally(() => {
      converting.delete(task);
      leases.release(id);
    });
  }

  async function upload(req: FastifyRequest, reply: FastifyReply) {
    const id = newId('ds');
    const uploadDir = artifacts.uploadDir(id);
    const received = await receiveUpload(req, uploadDir, config.uploadLimitBytes);
    let form: ReturnType<typeof parseUploadForm>;
    try {
      form = parseUploadForm(received);
    } catch (err) {
      await artifacts.remove(uploadDir);
      throw err;
    }
    const record = await store.datasets.insertValidating({ id, name: form.name, source: form.source }, req.tenant);
    convert(id, form.job, () => artifacts.remove(uploadDir));
    return reply.code(202).header('location', `/v1/datasets/${id}`).send(present(record));
  }

  async function derived(body: CreateDerivedDataset, tenant: string, reply: FastifyReply) {
    const { from, transform } = body.source;
    const errors: FieldError[] = [];
    const problem = (pointer: string, detail: string) => errors.push({ pointer, in: 'body', detail });
    const source = await store.datasets.get(from, tenant);
    if (!source) throw invalid([{ pointer: '/source/from', in: 'body', detail: `no dataset has the id ${JSON.stringify(from)}` }]);
    if (source.status !== 'ready') throw invalid([{ pointer: '/source/from', in: 'body', detail: `dataset ${from} is ${source.status}, not ready` }]);
    const classes = source.classes!;
    if (!OPERATIONS.some((op) => transform[op] !== undefined)) {
      problem('/source/transform', `names no operation; expected one or more of ${OPERATIONS.join(', ')}`);
    }
    transform.classes?.keep.forEach((name, i) => {
      if (!classes.includes(name)) problem(`/source/transform/classes/keep/${i}`, `${JSON.stringify(name)} is not a class of dataset ${from} (${classes.map((c) => JSON.stringify(c)).join(', ')})`);
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
    const id = newId('ds');
    const record = await store.datasets.insertValidating({ id, name: body.name, source: { from, transform } }, tenant);
    convert(id, {
      kind: 'derive',
      transform,
      source: {
        id: source.id,
        dir: source.dir!,
        numExamples: source.numExamples!,
        featureShape: source.featureShape!,
        featureDtype: source.featureDtype!,
        classes,
        imageShape: image,
        recordedImageShape: source.imageShape,
        preprocessing: source.preprocessing!,
      },
    });
    return reply.code(202).header('location', `/v1/datasets/${id}`).send(present(record));
  }

  async function builtin(body: CreateBuiltinDataset, tenant: string, reply: FastifyReply) {
    const { name, source } = body;
    const data = await loadMnist(source.split, source.limit);
    const id = newId('ds');
    const dir = artifacts.datasetDir(id);
    await artifacts.writeDir(dir, (tmp) => writeDatasetFiles(tmp, data.features, data.labels));
    const record = await store.datasets.insertReady({
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
    }, tenant);
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
        '- **upload** (`multipart/form-data`, e.g. `curl -F name=x -F format=csv -F file=@data.csv`): formats `csv`, `jsonl`, `idx` ' +
        '(fields `images` and `labels`, optionally gzipped) and `images` (a .zip/.tar/.tar.gz with one folder per class). ' +
        'The upload streams to disk; **202** with status `validating`, then the dataset becomes `ready` or `failed` with an `error` ' +
        '{code, message, location} naming the line and column, archive entry or IDX count at fault. Beyond UPLOAD_LIMIT_BYTES: **413**.\n' +
        '- **derived** (JSON `{"name", "source": {"from": "<datasetId>", "transform": {...}}}`): split, classes, subset, scale, rotate, ' +
        'translate, invert, noise, applied in that order, deterministic under `transform.seed`; **202**, then `ready` or `failed`.\n\n' +
        'Poll `GET /v1/datasets/{id}` until the status is no longer `validating`.',
      body: {
        content: {
          'application/json': { schema: CreateDataset },
          'multipart/form-data': { schema: UploadDatasetForm },
        },
      } as unknown as typeof CreateDataset,
      response: { 201: Dataset, 202: Dataset, 400: Problem, 413: Problem, 415: Problem },
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
    schema: { tags, summary: 'List datasets, newest first', description: 'Cursor paging: pass `nextCursor` as `after` for the next page while `hasMore` is true.', querystring: PageQuery, response: { 200: Page(Dataset) } },
    handler: async (req) => {
      const page = await store.datasets.list(req.query.limit, req.query.after, req.tenant);
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
        'Examples `offset` to `offset + limit - 1` in stored order: index, label, class name, the stored values (`features=false` leaves them out) ' +
        'and, for image-like datasets (see `imageShape`), a PNG as a data URL. Float images are stretched to the full grey range per picture.',
      params: IdParams,
      querystring: ExamplesQuery,
      response: { 200: ExamplesPage, 404: Problem, 409: Problem },
    },
    handler: async (req) => {
      const d = await store.datasets.get(req.params.id, req.tenant);
      if (!d) throw notFound('Dataset', req.params.id, '/id');
      if (d.status !== 'ready') throw new HttpProblem(409, 'not_ready', 'Dataset not ready', `dataset ${d.id} is ${d.status}; examples can be read once it is ready`);
      const { offset, limit, features } = req.query;
      const data = await readExamples(
        { dir: d.dir!, numExamples: d.numExamples!, featureShape: d.featureShape!, featureDtype: d.featureDtype!, imageShape: d.imageShape, classes: d.classes! },
        offset,
        limit,
        features,
      );
      return { data, offset, total: d.numExamples! };
    },
  });

  app.delete('/:id', {
    schema: {
      tags,
      summary: 'Remove a dataset',
      description: 'Refused with 409 while a queued, running or paused job uses it. A dataset still `validating` can be removed; its conversion is discarded.',
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
      await store.datasets.delete(d.id);
      if (d.dir) await artifacts.remove(d.dir);
      return reply.code(204).send(null);
    },
  });
};

export default routes;
