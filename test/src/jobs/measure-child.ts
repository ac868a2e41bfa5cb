/**
 * A training child for the estimator's test: runs one TrainingTask (argv[2], JSON) with
 * runTraining, as the worker's child does, and answers over IPC with the peak of the bytes
 * tfjs held in tensors during the run (tf.memory().numBytes, sampled at every change, not
 * between steps) above what it held before, and the growth of the wasm heap.
 */
import tf = require('@tensorflow/tfjs');
import { selectBackend } from '../../../workers/training/backend.js';
import { runTraining } from '../../../workers/training/training-loop.js';
import type { TrainingTask } from '../../../src/jobs/task.js';

export interface Measured {
  backend: string;
  /** the peak of tf.memory().numBytes during the run, less its value before */
  peakTensorBytes: number;
  /** how much the wasm heap grew (0 on other backends); it never shrinks, so this is its high-water mark, rounded up by its growth steps */
  wasmHeapGrowth: number;
  outcome: string;
}

const wasmHeap = () => {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength ?? 0;
};

async function measure(task: TrainingTask): Promise<Measured> {
  const backend = await selectBackend();
  // engine.state.numBytes changes at every tensor made or freed: an accessor records its peak.
  const state = (tf.engine() as unknown as { state: { numBytes: number } }).state;
  const before = state.numBytes;
  let value = before;
  let peak = before;
  Object.defineProperty(state, 'numBytes', {
    get: () => value,
    set: (v: number) => {
      value = v;
      if (v > peak) peak = v;
    },
  });
  const heapBefore = wasmHeap();
  const result = await runTraining(task, () => undefined);
  return { backend, peakTensorBytes: peak - before, wasmHeapGrowth: wasmHeap() - heapBefore, outcome: result.outcome };
}

measure(JSON.parse(process.argv[2]) as TrainingTask).then(
  (m) => process.send!(m, () => process.exit(0)),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
