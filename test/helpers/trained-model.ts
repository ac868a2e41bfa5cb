/**
 * A small real model for prediction tests: an MLP trained here (tfjs, cpu) on 8x8 greyscale
 * images of three kinds (bright top-left quadrant, bright top-right quadrant, bright bottom
 * half), saved as the training child saves models and recorded in the store, so routes and
 * prediction children meet it as they would a trained one.
 */
import tf = require('@tensorflow/tfjs');
import { saveModel } from '../../workers/training/models.js';
import type { AppDeps } from '../../src/deps.js';
import { newId } from '../../src/store/ids.js';

export const SIDE = 8;
export const CLASSES = ['top-left', 'top-right', 'bottom'];
export const PREPROCESSING = { scale: 1 / 255, offset: 0 };

/** Raw pixels (0-255, row-major) of an image of class `c`, with a little noise from `seed`. */
export function pattern(c: number, seed = 0): number[] {
  const pixels: number[] = [];
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const lit = c === 0 ? y < SIDE / 2 && x < SIDE / 2 : c === 1 ? y < SIDE / 2 && x >= SIDE / 2 : y >= SIDE / 2;
      pixels.push(lit ? 255 - ((seed * 7 + x * 3 + y) % 40) : (seed * 5 + x + y * 2) % 30);
    }
  }
  return pixels;
}

/** Trains the MLP and stores it for `tenant`; its id. */
export async function storeTrainedModel(deps: AppDeps, tenant = 'default'): Promise<string> {
  await tf.setBackend('cpu');
  const xs: number[][] = [];
  const ys: number[] = [];
  for (let seed = 0; seed < 30; seed++)
    for (let c = 0; c < 3; c++) {
      xs.push(pattern(c, seed).map((v) => v * PREPROCESSING.scale));
      ys.push(c);
    }
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [SIDE * SIDE], units: 16, activation: 'relu' }), tf.layers.dense({ units: 3, name: 'logits' })],
  });
  model.compile({ optimizer: tf.train.adam(0.05), loss: (y: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, logits) });
  const x = tf.tensor2d(xs);
  const y = tf.oneHot(tf.tensor1d(ys, 'int32'), 3).toFloat();
  await model.fit(x, y, { epochs: 40, batchSize: 30, shuffle: false, verbose: 0 });
  const id = newId('mdl');
  const dir = deps.artifacts.modelDir(id);
  model.setUserDefinedMetadata({ tfjsAdapt: { inputShape: [SIDE * SIDE], classes: CLASSES, preprocessing: PREPROCESSING, output: 'logits', jobId: 'none' } });
  await saveModel(model, dir);
  tf.dispose([x, y]);
  model.dispose();
  await deps.store.models.insert(
    deps.store.db,
    {
      id,
      name: 'patterns',
      status: 'ready',
      jobId: null,
      baseModelId: null,
      datasetIds: {},
      metrics: null,
      inputShape: [SIDE * SIDE],
      classes: CLASSES,
      preprocessing: PREPROCESSING,
      dir,
    },
    tenant,
  );
  return id;
}

/**
 * Saves `model` (784 inputs, 10 digit classes, untrained is fine) as model `id` of the default
 * tenant, recorded ready as a trained one is; its directory under this process's root.
 */
export async function recordDigitModel(deps: AppDeps, model: tf.LayersModel, o: { id: string; name: string }): Promise<string> {
  const dir = deps.artifacts.modelDir(o.id);
  await saveModel(model, dir);
  await deps.store.models.insert(deps.store.db, {
    id: o.id,
    name: o.name,
    status: 'ready',
    jobId: null,
    baseModelId: null,
    datasetIds: {},
    metrics: null,
    inputShape: [784],
    classes: Array.from({ length: 10 }, (_, i) => String(i)),
    preprocessing: null,
    dir,
  });
  return dir;
}
