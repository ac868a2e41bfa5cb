/**
 * The messages between the API's prediction pool (src/predict/pool.ts) and a prediction child
 * (workers/predict/child.ts), over an IPC channel with structured-clone ("advanced")
 * serialization, so typed arrays cross as bytes, not JSON.
 */

import type { Preprocessing } from '../jobs/preprocessing.js';

/** One batch of examples for one model. */
export interface PredictRequest {
  id: number;
  model: {
    id: string;
    /** directory holding model.json and weights.bin */
    dir: string;
  };
  /** shape of one example, batch dimension left out */
  inputShape: number[];
  /** the model's input convention (src/jobs/preprocessing.ts); null: the raw values are the model's input */
  preprocessing: Preprocessing | null;
  /** raw values of `count` examples, one after the other */
  examples: Float32Array;
  count: number;
}

export type PredictAnswer =
  /** `probabilities`: `count` rows of `numClasses` softmax probabilities */
  | { id: number; ok: true; probabilities: Float32Array; numClasses: number }
  /** `invalid_model`: the stored model cannot be loaded or does not take `inputShape` */
  | { id: number; ok: false; code: 'invalid_model'; message: string };

/** What a child sends once, when its backend is up and it takes requests. */
export interface ChildReady {
  ready: true;
  backend: string;
}
