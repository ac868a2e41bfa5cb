/**
 * A warm prediction child: the API's pool (src/predict/pool.ts) forks it by path with an IPC
 * channel. It selects the tfjs backend once, then answers PredictRequests one at a time, keeping
 * recently used models loaded (ModelCache). It reads model files and nothing else: no store, no
 * Redis, no HTTP.
 *
 * Environment: PREDICT_CACHE_MODELS and PREDICT_CACHE_BYTES, the cache's limits.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import tf = require('@tensorflow/tfjs');
import { applyPreprocessing } from '../../src/jobs/preprocessing.js';
import type { ChildReady, PredictAnswer, PredictRequest } from '../../src/predict/protocol.js';
import { selectBackend } from '../training/backend.js';
import { loadModel, WEIGHTS_FILE } from '../training/models.js';
import { ModelCache } from './model-cache.js';

const cache = new ModelCache<tf.LayersModel>({
  models: Number(process.env.PREDICT_CACHE_MODELS ?? 8),
  bytes: Number(process.env.PREDICT_CACHE_BYTES ?? 512 * 1024 ** 2),
});

class InvalidModel extends Error {}

async function model(ref: PredictRequest['model'], inputShape: number[]): Promise<tf.LayersModel> {
  const key = `${ref.id}:${ref.dir}`;
  const cached = cache.get(key);
  if (cached) return cached;
  let loaded: tf.LayersModel;
  try {
    // loadModel turns a softmax output into logits; the softmax is applied below either way
    loaded = (await loadModel(ref.dir, { param: '/id' })).model;
  } catch (err) {
    throw new InvalidModel((err as Error).message);
  }
  const input = loaded.inputs[0].shape.slice(1);
  const output = loaded.outputs[0].shape;
  if (loaded.inputs.length !== 1 || loaded.outputs.length !== 1 || output.length !== 2) {
    loaded.dispose();
    throw new InvalidModel(
      `model ${ref.id} has ${loaded.inputs.length} inputs and ${loaded.outputs.length} outputs of shape [${output.join(', ')}]; expected one input and one [?, classes] output`,
    );
  }
  if (input.length !== inputShape.length || input.some((d, i) => d !== null && d !== inputShape[i])) {
    loaded.dispose();
    throw new InvalidModel(`model ${ref.id} takes inputs of shape [${input.map((d) => d ?? '?').join(', ')}]; its record says [${inputShape.join(', ')}]`);
  }
  const { size } = await stat(path.join(ref.dir, WEIGHTS_FILE)).catch(() => ({ size: 0 }));
  cache.set(key, loaded, size);
  return loaded;
}

async function answer(req: PredictRequest): Promise<PredictAnswer> {
  let m: tf.LayersModel;
  try {
    m = await model(req.model, req.inputShape);
  } catch (err) {
    if (err instanceof InvalidModel) return { id: req.id, ok: false, code: 'invalid_model', message: err.message };
    throw err;
  }
  const x = applyPreprocessing(req.examples, req.preprocessing, req.inputShape.length === 3 ? req.inputShape[2] : 1);
  const probabilities = tf.tidy(() => {
    const logits = m.predict(tf.tensor(x, [req.count, ...req.inputShape], 'float32')) as tf.Tensor2D;
    return tf.softmax(logits).dataSync() as Float32Array;
  });
  return { id: req.id, ok: true, probabilities, numClasses: probabilities.length / req.count };
}

const backend = selectBackend();
// Requests are answered in order, one at a time, once the backend is up: a child computes on
// one thread anyway, and the pool bounds how many wait.
let chain: Promise<unknown> = backend;
process.on('message', (req: PredictRequest) => {
  chain = chain.then(async () => {
    const reply = await answer(req);
    process.send!(reply);
  });
  // anything else is a bug of this child: it exits, and the pool answers 503 and replaces it
  chain.catch((err: Error) => {
    process.stderr.write(`prediction child failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));

backend.then(
  (backend) => process.send!({ ready: true, backend } satisfies ChildReady),
  (err: Error) => {
    process.stderr.write(`prediction child: no tfjs backend: ${err.message}\n`);
    process.exit(1);
  },
);
