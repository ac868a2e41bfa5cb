import type * as tf from '@tensorflow/tfjs';
import type { Method, MethodFactory } from './method.js';

/** Full fine-tuning (and training from scratch): every trainable weight, no extra term. */
export const full: MethodFactory = (model): Method => ({
  name: 'full',
  variables: model.trainableWeights.map((w) => w.read() as tf.Variable),
  dispose: () => {},
});
