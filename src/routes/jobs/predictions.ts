/**
 * GET /v1/jobs/{id}/predictions: the file a predict job wrote (src/jobs/predictions-file.ts),
 * streamed through the API (with an object store, from it), so the tenant check stays here.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { predictionsFileName, PREDICTIONS_MEDIA_TYPES } from '../../jobs/predictions-file.js';
import { HttpProblem, notFound } from '../../plugins/problem.js';
import { IdParams, Problem } from '../../schemas/common.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts } = app.deps;

  app.get('/:id/predictions', {
    schema: {
      tags: ['jobs'],
      summary: "Download a predict job's predictions",
      description:
        "The file a succeeded `predict` job wrote, one row per example of its `data.input` in the dataset's order, each with its classes by falling probability as `POST /v1/models/{id}/predict` answers: " +
        '`application/x-ndjson` (`{"index": 0, "classes": [{"class": "cat", "probability": 0.93}, ...]}` per line) or `text/csv` ' +
        "(`index,class_1,probability_1,...` with a header line), as `output.format` asked. Its size is in the job's `result.predictions`; " +
        "it counts in the tenant's storage quota. **404** for an unknown job or another tenant's; **409** for a job that is not a predict job or has not succeeded.",
      params: IdParams,
      response: {
        200: Type.Unsafe<unknown>({ type: 'string', description: 'JSONL or CSV, as the job asked' }),
        404: Problem,
        409: Problem,
      },
    },
    handler: async (req, reply) => {
      const job = await store.jobs.get(req.params.id, req.tenant);
      if (!job) throw notFound('Job', req.params.id, '/id');
      if (job.type !== 'predict') {
        throw new HttpProblem(409, 'not_a_predict_job', 'Not a predict job', `job ${job.id} is a ${job.type} job; only predict jobs write predictions`);
      }
      const file = job.result?.predictions;
      if (job.status !== 'succeeded' || file === undefined) {
        throw new HttpProblem(
          409,
          'not_ready',
          'Predictions not ready',
          `job ${job.id} is ${job.status}; its predictions can be downloaded once it has succeeded`,
        );
      }
      const name = predictionsFileName(file.format);
      const { body, bytes } = await artifacts.openFile(artifacts.predictionsDir(job.id), name);
      return reply
        .type(PREDICTIONS_MEDIA_TYPES[file.format])
        .header('content-length', bytes)
        .header('content-disposition', `attachment; filename="${job.id}-${name}"`)
        .send(body);
    },
  });
};

export default routes;
