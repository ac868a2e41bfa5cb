/**
 * POST /v1/models/{id}/predict: examples (JSON) or images (multipart) in, class probabilities
 * out, computed by the app's pool of prediction children (src/predict/pool.ts), never here. A
 * request takes its place in the pool before its body is read and holds it until it ends.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { fieldsProblem, HttpProblem, notFound } from '../../plugins/problem.js';
import { rankClasses } from '../../jobs/predictions-file.js';
import { predictionPreprocessing } from '../../jobs/preprocessing.js';
import { packExamples } from '../../predict/examples.js';
import { ImageDecodeError, imageInput, imagePixels } from '../../predict/images.js';
import { PredictModelError, PredictUnavailable, type Prediction, type PredictPlace } from '../../predict/pool.js';
import { IdParams, Problem } from '../../schemas/common.js';
import { PredictBody, PredictForm, Predictions } from '../../schemas/predict.js';
import type { ModelRecord } from '../../store/models.js';
import { watchBody } from '../body-watch.js';

const FORM_FIELD_BYTES = 1024;

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, artifacts, config } = app.deps;
  const limits = config.predict;
  /** Each request's place among the predictions in flight, taken by its preParsing hook. */
  const places = new WeakMap<FastifyRequest, PredictPlace>();

  const invalid = (pointer: string, detail: string) =>
    fieldsProblem({ status: 400, slug: 'validation', title: 'The request is not valid', errors: [{ pointer, in: 'body', detail }] });

  /** Raw pixels of every `image` part, and `topK` if given; bounded by count and bytes as they arrive. */
  async function readImages(req: FastifyRequest, m: ModelRecord & { inputShape: number[] }): Promise<{ values: Float32Array; count: number; topK?: number }> {
    const input = imageInput(m.inputShape);
    if ('refused' in input)
      throw new HttpProblem(400, 'not_an_image_model', 'The model does not take images', input.refused, [
        { pointer: '/image', in: 'body', detail: input.refused },
      ]);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limits.maxBodyBytes) throw tooLarge(limits.maxBodyBytes);
    const pixels: Array<Promise<Float32Array>> = [];
    let topK: number | undefined;
    let total = 0;
    // the client may have gone while the route awaited the store, or stall, or trickle: without the
    // watch the parser would wait for its parts for ever (upload-receiver.ts reads its forms alike)
    const body = watchBody(req.raw, config);
    try {
      const formLimits = {
        fileSize: limits.maxBodyBytes,
        fieldSize: FORM_FIELD_BYTES,
        fields: 4,
        files: limits.maxExamples + 1,
        parts: limits.maxExamples + 5,
      };
      const parts = req.parts({ limits: formLimits })[Symbol.asyncIterator]();
      for (;;) {
        const next = await body.race(parts.next());
        if (next.done) break;
        const part = next.value;
        if (part.type === 'field') {
          if (part.fieldname !== 'topK') throw invalid(`/${part.fieldname}`, 'is not a known field; expected image files and optionally topK');
          topK = Number(part.value);
          if (!Number.isInteger(topK) || topK < 1) throw invalid('/topK', `is ${JSON.stringify(part.value)}; expected an integer >= 1`);
          continue;
        }
        if (part.fieldname !== 'image') throw invalid(`/${part.fieldname}`, 'is not a known field; send images as `image` parts');
        const index = pixels.length;
        if (index >= limits.maxExamples) throw tooManyExamples('/image', limits.maxExamples);
        const bytes = await body.race(part.toBuffer());
        total += bytes.length;
        if (total > limits.maxBodyBytes) throw tooLarge(limits.maxBodyBytes);
        const decoding = imagePixels(bytes, input, config.imageMaxPixels).catch((err: unknown) => {
          throw err instanceof ImageDecodeError ? invalid(`/image/${index}`, `(${part.filename || 'unnamed'}) ${err.message}`) : err;
        });
        // decoded while later parts arrive: a broken image must not be an unhandled rejection (which
        // ends the process) when the form fails before Promise.all below looks at it
        decoding.catch(() => undefined);
        pixels.push(decoding);
      }
    } catch (err) {
      // what the parser makes of a body cut short says less than the watch's problem
      if (!(err instanceof HttpProblem) && body.signal.aborted) throw body.signal.reason as HttpProblem;
      throw err;
    } finally {
      body.stop();
    }
    if (pixels.length === 0) throw invalid('/image', 'is missing; expected one or more image files, e.g. curl -F image=@cat.jpg');
    const decoded = await Promise.all(pixels);
    const size = decoded[0].length;
    const values = new Float32Array(decoded.length * size);
    decoded.forEach((p, i) => values.set(p, i * size));
    return { values, count: decoded.length, ...(topK !== undefined ? { topK } : {}) };
  }

  app.post('/:id/predict', {
    bodyLimit: limits.maxBodyBytes,
    schema: {
      tags: ['models'],
      summary: 'Predict the classes of examples or images',
      description:
        'JSON `{"examples": [...], "topK": k}`, each example in the layout of the datasets the model was trained on with raw values as stored (pixels 0-255), ' +
        'nested as `inputShape` or flat; or `multipart/form-data` with one or more `image` files (`curl -F image=@cat.jpg -F image=@dog.png`), each decoded, ' +
        "stretched to the model's height and width, greyscale or RGB as its channels say. The model's preprocessing (`input = raw * scale + offset`) is applied here, " +
        'as in training. **200** with one prediction per example in order, its classes by falling probability (softmax of the logits), class names from the model. ' +
        'Computed by a pool of warm child processes that keep recently used models loaded. Bounds: at most PREDICT_MAX_EXAMPLES examples (**400** `too_many_examples`) ' +
        'and PREDICT_MAX_BODY_BYTES bytes (**413**) per request; an example of the wrong shape is a **400** naming it (`/examples/3`) and the shape expected; ' +
        'a body (JSON or multipart) that sends nothing for UPLOAD_IDLE_TIMEOUT_SECONDS is a **408** `upload_stalled`, one whose average rate is below ' +
        'UPLOAD_MIN_BYTES_PER_SECOND once it has run UPLOAD_RATE_GRACE_SECONDS a **408** `upload_too_slow`, either with the connection closed; ' +
        'PREDICT_TENANT_CONCURRENCY predictions in flight per tenant (**429** `too_many_predictions`) and PREDICT_QUEUE_MAX in all (**503** `predictions_busy`), ' +
        'each with Retry-After; a child that crashes or takes longer than PREDICT_TIMEOUT_MS is replaced and the request answered **503** (`prediction_failed`, ' +
        '`prediction_timeout`): retry. The in-flight bounds are checked before the body is read or the model fetched, and a request holds its place from then ' +
        'until it is answered, so PREDICT_TENANT_CONCURRENCY also caps the prediction uploads a tenant has in progress. ' +
        "Another tenant's model is a **404**; a model that is not `ready` a **409**. With an object store (ARTIFACTS_URL) the model's files " +
        'are fetched from it when this host has no copy: **409** `artifact_damaged` when the store holds them damaged or not at all (the detail names the object), ' +
        '**503** `artifacts_unavailable` when it does not answer (retry).',
      params: IdParams,
      body: { content: { 'application/json': { schema: PredictBody }, 'multipart/form-data': { schema: PredictForm } } } as unknown as typeof PredictBody,
      response: { 200: Predictions, 400: Problem, 404: Problem, 408: Problem, 409: Problem, 413: Problem, 415: Problem, 429: Problem, 503: Problem },
    },
    // the multipart form is read and checked by the handler, part by part
    validatorCompiler: (route) => (route.httpPart === 'body' && route.contentType === 'multipart/form-data' ? () => true : app.validatorCompiler!(route)),
    // after the onRequest hooks (auth has named the tenant) and the app's watch on parsed bodies: a
    // request beyond the bounds is refused before it uploads its body or has a model fetched
    preParsing: async (req, reply, payload) => {
      let place: PredictPlace;
      try {
        place = app.predictions.reserve(req.tenant);
      } catch (err) {
        throw asProblem(err, reply);
      }
      places.set(req, place);
      // 'close' ends every response: answered, refused, failed, or its client gone; that may have
      // happened already, while the onRequest hooks awaited
      if (reply.raw.closed) place.release();
      else reply.raw.once('close', () => place.release());
      return payload;
    },
    handler: async (req, reply) => {
      const place = places.get(req);
      if (place === undefined) throw new Error('the predict handler ran without the place its preParsing hook takes');
      const m = await store.models.get(req.params.id, req.tenant);
      if (!m) throw notFound('Model', req.params.id, '/id');
      if (m.status !== 'ready') throw new HttpProblem(409, 'not_ready', 'Model not ready', `model ${m.id} is ${m.status}`);
      const inputShape = m.inputShape;
      if (inputShape === null) {
        throw new HttpProblem(
          409,
          'no_input_shape',
          'The model has no fixed input shape',
          `model ${m.id} takes inputs with free dimensions; predictions need a model whose input shape is fixed`,
        );
      }
      let input: { values: Float32Array; count: number; topK?: number };
      if (req.isMultipart()) input = await readImages(req, { ...m, inputShape });
      else {
        const body = req.body;
        if (body.examples.length > limits.maxExamples) throw tooManyExamples('/examples', limits.maxExamples);
        const packed = packExamples(body.examples, inputShape);
        if ('errors' in packed) {
          throw fieldsProblem({
            status: 400,
            slug: 'validation',
            title: `Examples do not fit the model's input shape [${inputShape.join(', ')}]`,
            errors: packed.errors,
          });
        }
        input = { values: packed.values, count: body.examples.length, ...(body.topK !== undefined ? { topK: body.topK } : {}) };
      }
      // this process's copy by the model's id (fetched from the object store when it has none), kept while the child may load it:
      // the recorded dir is the path on the host that wrote it, with separate hosts another machine's
      const dir = artifacts.modelDir(m.id);
      const lease = await artifacts.checkout(dir);
      let prediction: Prediction;
      try {
        prediction = await place.predict({
          model: { id: m.id, dir },
          inputShape,
          preprocessing: predictionPreprocessing(m.preprocessing),
          examples: input.values,
          count: input.count,
        });
      } catch (err) {
        throw asProblem(err, reply);
      } finally {
        await lease.release();
      }
      const { probabilities: p, numClasses } = prediction;
      const predictions = Array.from({ length: input.count }, (_, i) => ({
        classes: rankClasses(p.subarray(i * numClasses, (i + 1) * numClasses), m.classes, input.topK),
      }));
      return { predictions };
    },
  });
};

const tooLarge = (limit: number) =>
  new HttpProblem(
    413,
    'body_too_large',
    'Request too large',
    `a prediction request may carry at most ${limit} bytes (PREDICT_MAX_BODY_BYTES); send fewer examples per request`,
  );

const tooManyExamples = (pointer: string, limit: number) =>
  fieldsProblem({
    status: 400,
    slug: 'too_many_examples',
    title: 'Too many examples',
    errors: [
      { pointer, in: 'body', detail: `holds more than ${limit} examples, the most one request may (PREDICT_MAX_EXAMPLES); send them in several requests` },
    ],
  });

function asProblem(err: unknown, reply: { header(name: string, value: string): unknown }): unknown {
  if (err instanceof PredictModelError) return new HttpProblem(409, 'invalid_model', 'The model cannot be run', err.message);
  if (!(err instanceof PredictUnavailable)) return err;
  reply.header('retry-after', '1');
  switch (err.reason) {
    case 'tenant_busy':
      return new HttpProblem(429, 'too_many_predictions', 'Too many predictions in flight', err.message);
    case 'pool_busy':
      return new HttpProblem(503, 'predictions_busy', 'Predictions busy', err.message);
    case 'timeout':
      return new HttpProblem(503, 'prediction_timeout', 'Prediction timed out', err.message);
    case 'child_crashed':
      return new HttpProblem(503, 'prediction_failed', 'Prediction failed', err.message);
    case 'place_released':
      // its client is gone: nobody reads this answer; it names the cause in the log
      return new HttpProblem(400, 'client_gone', 'Client gone', err.message);
  }
}

export default routes;
