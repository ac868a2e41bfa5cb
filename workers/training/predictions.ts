/**
 * A predict job: `model.base` on every example of data.input in stored order, in inference mode,
 * each example fed as the predict route feeds one (the task's DatasetFiles carry the model's
 * preprocessing, src/jobs/training-task.ts) and answered as it answers (softmax of the logits,
 * classes by falling probability: src/jobs/predictions-file.ts). The rows go to one file, written
 * in a temp dir that replaces the predictions dir once complete, never larger than the task's
 * maxBytes. A stop request ends it between batches, writing nothing.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import tf = require('@tensorflow/tfjs');
import { inferenceBatchRows } from './eval-batch-rows.js';
import { predictionLine, predictionsFileName, predictionsHeader, rankClasses } from '../../src/jobs/predictions-file.js';
import { TrainingError, type TrainingMessage, type TrainingResult, type TrainingTask } from '../../src/jobs/task.js';
import { Batcher, loadDataset } from './data.js';
import { checkTakes, loadModel, replaceDirAtomically } from './models.js';
import { ProgressThrottle } from './progress-throttle.js';

type Report = (message: TrainingMessage) => Promise<void> | void;

const PARAM = '/data/input';

export async function runPredictions(task: TrainingTask, backend: string, report: Report, signal: AbortSignal | undefined): Promise<TrainingResult> {
  const { baseModelDir, baseModelId, predictions: out } = task;
  const files = task.data.input;
  if (files === undefined) throw new TrainingError('invalid_spec', 'the task has no input dataset', { param: PARAM });
  if (baseModelDir === undefined || baseModelId === undefined) {
    throw new TrainingError('invalid_spec', 'a predict job needs a base model, but the task has none', { param: '/model/base' });
  }
  if (out === undefined)
    throw new TrainingError('invalid_spec', 'a predict job needs the predictions file to write, but the task has none', { param: '/output' });
  const input = await loadDataset(files, PARAM);
  // loadModel turns a softmax output into logits; the softmax is applied below either way, as the predict route's child does
  const { model, notes } = await loadModel(baseModelDir);
  try {
    checkTakes(model, files, PARAM);
    for (const message of notes) await report({ type: 'log', level: 'info', message });
    const numClasses = model.outputs[0].shape[1] ?? 0;
    const topK = Math.min(out.topK ?? numClasses, numClasses);
    const batcher = new Batcher(input, inferenceBatchRows(model, files));
    const name = predictionsFileName(out.format);
    let stopped = false;
    await replaceDirAtomically(out.dir, async (tmp) => {
      const handle = await open(path.join(tmp, name), 'w');
      try {
        let bytes = 0;
        const write = async (text: string) => {
          const chunk = Buffer.from(text, 'utf8');
          bytes += chunk.length;
          if (bytes > out.maxBytes) {
            throw new TrainingError(
              'predictions_too_large',
              `the predictions file grew past ${out.maxBytes} bytes after fewer than ${files.numExamples} rows; expected fewer classes a row (output.topK) or a smaller dataset`,
              { param: '/output/topK' },
            );
          }
          await handle.write(chunk);
        };
        await write(predictionsHeader(out.format, topK));
        const progress = new ProgressThrottle();
        for (let step = 0; step < batcher.steps; step++) {
          if (signal?.aborted) {
            stopped = true;
            throw new Error('stopped');
          }
          const batch = batcher.fill(step);
          const probabilities = tf.tidy(() => {
            const logits = model.apply(tf.tensor(batch.x, batch.shape, 'float32'), { training: false }) as tf.Tensor2D;
            return tf.softmax(logits).dataSync() as Float32Array;
          });
          let lines = '';
          for (let r = 0; r < batch.size; r++) {
            const row = probabilities.subarray(r * numClasses, (r + 1) * numClasses);
            lines += predictionLine(out.format, step * batcher.batchSize + r, rankClasses(row, out.classes, topK));
          }
          await write(lines);
          if (progress.due(step === batcher.steps - 1)) {
            await report({ type: 'progress', progress: { epoch: 1, epochs: 1, step: step + 1, steps: batcher.steps } });
          }
          // Lets the process handle IPC (a cancel) between batches.
          await new Promise(setImmediate);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
    }).catch((err: unknown) => {
      if (!stopped) throw err;
    });
    if (stopped) return { outcome: 'cancelled', metrics: {}, stoppedAt: { epoch: 0, step: 0 } };
    return {
      outcome: 'succeeded',
      modelId: baseModelId,
      metrics: { predictedExamples: files.numExamples },
      predictions: { format: out.format, rows: files.numExamples },
      backend,
    };
  } finally {
    model.dispose();
  }
}
