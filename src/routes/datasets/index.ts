import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { loadMnist } from '../../artifacts/builtin-datasets.js';
import { classCounts, writeDatasetFiles } from '../../artifacts/dataset-files.js';
import { HttpProblem, notFound } from '../../plugins/problem.js';
import { IdParams, Page, PageQuery, Problem } from '../../schemas/common.js';
import { CreateDataset, Dataset } from '../../schemas/dataset.js';
import type { DatasetRecord } from '../../store/datasets.js';
import { newId } from '../../store/ids.js';

const present = (d: DatasetRecord): Dataset => ({
  id: d.id,
  object: 'dataset',
  name: d.name,
  status: d.status,
  source: d.source,
  numExamples: d.numExamples,
  featureShape: d.featureShape,
  numClasses: d.numClasses,
  classes: d.classes,
  classCounts: d.classCounts,
  preprocessing: d.preprocessing,
  error: d.error,
  createdAt: d.createdAt,
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts } = app.deps;
  const tags = ['datasets'];

  app.post('/', {
    schema: {
      tags,
      summary: 'Register a dataset',
      description: 'Registers a built-in dataset (`mnist`, split `train` or `test`). It is converted once into the compact form the training child reads.',
      body: CreateDataset,
      response: { 201: Dataset, 400: Problem },
    },
    handler: async (req, reply) => {
      const { name, source } = req.body;
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
        numClasses: data.classes.length,
        classes: data.classes,
        classCounts: classCounts(data.labels, data.classes.length),
        preprocessing: data.preprocessing,
        dir,
      });
      return reply.code(201).header('location', `/v1/datasets/${id}`).send(present(record));
    },
  });

  app.get('/', {
    schema: { tags, summary: 'List datasets, newest first', querystring: PageQuery, response: { 200: Page(Dataset) } },
    handler: async (req) => {
      const page = await store.datasets.list(req.query.limit, req.query.after);
      return { ...page, data: page.data.map(present) };
    },
  });

  app.get('/:id', {
    schema: { tags, summary: 'Read a dataset', params: IdParams, response: { 200: Dataset, 404: Problem } },
    handler: async (req) => {
      const d = await store.datasets.get(req.params.id);
      if (!d) throw notFound('Dataset', req.params.id, '/id');
      return present(d);
    },
  });

  app.delete('/:id', {
    schema: {
      tags,
      summary: 'Remove a dataset',
      description: 'Refused with 409 while a queued, running or paused job uses it.',
      params: IdParams,
      response: { 204: Type.Null(), 404: Problem, 409: Problem },
    },
    handler: async (req, reply) => {
      const d = await store.datasets.get(req.params.id);
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
