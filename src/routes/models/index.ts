import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HttpProblem, notFound } from '../../plugins/problem.js';
import { IdParams, Page, PageQuery, Problem } from '../../schemas/common.js';
import { Model } from '../../schemas/model.js';
import type { ModelRecord } from '../../store/models.js';

const present = (m: ModelRecord): Model => ({
  id: m.id,
  object: 'model',
  name: m.name,
  status: m.status,
  jobId: m.jobId,
  baseModelId: m.baseModelId,
  datasetIds: m.datasetIds,
  metrics: m.metrics,
  inputShape: m.inputShape,
  classes: m.classes,
  preprocessing: m.preprocessing,
  files: { modelJson: `/v1/models/${m.id}/model.json`, weights: `/v1/models/${m.id}/weights.bin` },
  createdAt: m.createdAt,
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store } = app.deps;
  const tags = ['models'];

  async function readyModel(id: string): Promise<ModelRecord> {
    const m = await store.models.get(id);
    if (!m) throw notFound('Model', id, '/id');
    if (m.status !== 'ready') throw new HttpProblem(409, 'not_ready', 'Model not ready', `model ${id} is ${m.status}`);
    return m;
  }

  app.get('/', {
    schema: { tags, summary: 'List models, newest first', querystring: PageQuery, response: { 200: Page(Model) } },
    handler: async (req) => {
      const page = await store.models.list(req.query.limit, req.query.after);
      return { ...page, data: page.data.map(present) };
    },
  });

  app.get('/:id', {
    schema: { tags, summary: 'Read a model and its lineage', params: IdParams, response: { 200: Model, 404: Problem } },
    handler: async (req) => {
      const m = await store.models.get(req.params.id);
      if (!m) throw notFound('Model', req.params.id, '/id');
      return present(m);
    },
  });

  app.get('/:id/model.json', {
    schema: {
      tags,
      summary: 'Download the model topology and weight manifest',
      description: 'Standard tfjs LayersModel JSON: `tf.loadLayersModel(<this url>)` fetches weights.bin beside it. `userDefinedMetadata.tfjsAdapt` holds inputShape, classes and preprocessing (input = raw * scale + offset); outputs are logits.',
      params: IdParams,
      response: { 200: Type.Unknown(), 404: Problem },
    },
    handler: async (req, reply) => {
      const m = await readyModel(req.params.id);
      const text = await readFile(join(m.dir, 'model.json'), 'utf8');
      return reply.type('application/json').send(text);
    },
  });

  app.get('/:id/weights.bin', {
    schema: {
      tags,
      summary: 'Download the model weights',
      params: IdParams,
      response: { 200: Type.Unsafe<unknown>({ type: 'string', format: 'binary' }), 404: Problem },
    },
    handler: async (req, reply) => {
      const m = await readyModel(req.params.id);
      const file = join(m.dir, 'weights.bin');
      const { size } = await stat(file);
      return reply.type('application/octet-stream').header('content-length', size).send(createReadStream(file));
    },
  });
};

export default routes;
