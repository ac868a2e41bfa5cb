/**
 * The shared training loop: one custom step (forward, softmax cross-entropy on logits, method
 * terms, gradients, optimizer update) run over seeded batches, with throttled progress, per-epoch
 * metrics and atomic checkpoints. Methods plug in through `methods/method.ts`.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './backend.js';
import { Batcher, loadDataset, type Batch, type Dataset } from './data.js';
import { countCorrect, deviceSums, evaluate, oneHot } from './evaluate.js';
import { createMethod, type Method } from './methods/method.js';
import { buildMlp, checkCompatible, loadModel, saveModel, trainingForward, type ModelMetadata } from './models.js';
import { createOptimizer, disposeOptimizer } from './optimizers.js';
import { TrainingError, type DatasetFiles, type TrainingMessage, type TrainingResult, type TrainingTask } from './task.js';

/** Progress events become job events and SSE messages; a few per second is plenty. */
const PROGRESS_INTERVAL_MS = 250;
/** The seed of a spec without one, so that every run is reproducible. */
export const DEFAULT_SEED = 1;
export const STATE_FILE = 'state.json';
export const OPTIMIZER_FILE = 'optimizer.bin';

type Report = (message: TrainingMessage) => Promise<void> | void;

/** `epoch-0001`: zero-padded so checkpoint directories sort by epoch. */
export function checkpointName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`;
}

/**
 * Runs one training task to completion, cancellation or failure. Every tensor it creates is
 * disposed before it returns or throws, because the child process runs many jobs in turn.
 */
export async function runTraining(task: TrainingTask, report: Report, signal?: AbortSignal): Promise<TrainingResult> {
  const backend = await selectBackend();
  await report({ type: 'started', backend, numTensors: tf.memory().numTensors });

  const train = await loadDataset(task.data.train, '/data/train');
  const validation = task.data.validation && (await loadDataset(task.data.validation, '/data/validation'));
  const test = task.data.test && (await loadDataset(task.data.test, '/data/test'));
  if (validation) checkSameKind(train.files, validation.files, '/data/validation');
  if (test) checkSameKind(train.files, test.files, '/data/test');

  const { model, logs } = await prepareModel(task, train.files);
  let method: Method | undefined;
  let optimizer: tf.Optimizer | undefined;
  const sums = deviceSums();
  try {
    for (const log of logs) await report(log);
    method = createMethod(model, task);
    optimizer = createOptimizer(task.spec.hyperparameters.optimizer);
    return await loop({ task, backend, report, signal, train, validation, test, model, method, optimizer, sums });
  } finally {
    method?.dispose();
    if (optimizer) disposeOptimizer(optimizer);
    model.dispose();
    sums.loss.dispose();
    sums.correct.dispose();
  }
}

interface Run {
  task: TrainingTask;
  backend: string;
  report: Report;
  signal: AbortSignal | undefined;
  train: Dataset;
  validation: Dataset | undefined;
  test: Dataset | undefined;
  model: tf.LayersModel;
  method: Method;
  optimizer: tf.Optimizer;
  /** running sums of the epoch, kept on the device so steps never wait for a read-back */
  sums: { loss: tf.Variable; correct: tf.Variable };
}

async function loop(run: Run): Promise<TrainingResult> {
  const { task, report, signal, train, model, method, optimizer, sums } = run;
  const hp = task.spec.hyperparameters;
  const { epochs } = hp;
  const numClasses = train.files.numClasses;
  const batcher = new Batcher(train, hp.batchSize, hp.seed ?? DEFAULT_SEED);
  const steps = batcher.steps;
  // Explicit transposes only pay off on wasm: tfjs-node's and the cpu backend's matMul handle
  // transposed operands at full speed, and there an extra transpose is pure cost.
  const forward = trainingForward(model, run.backend === 'wasm');
  let metrics: Record<string, number> = {};

  const trainStep = (batch: Batch): void =>
    tf.tidy(() => {
      const x = tf.tensor(batch.x, batch.shape, 'float32');
      const y = tf.tensor1d(batch.y, 'int32');
      const labels = oneHot(y, numClasses);
      const { grads } = tf.variableGrads(() => {
        const logits = forward(x) as tf.Tensor2D;
        const taskLoss = tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
        // Accumulated here because the tape's scope disposes the logits when it returns.
        sums.loss.assign(tf.add(sums.loss, tf.mul(taskLoss, batch.size)));
        sums.correct.assign(tf.add(sums.correct, countCorrect(logits, y)));
        const extra = method.extraLoss?.({ x, labels, logits, taskLoss });
        return extra === undefined ? taskLoss : tf.add(taskLoss, extra);
      }, method.variables);
      optimizer.applyGradients(grads);
    });

  const meanLoss = async (seen: number, epoch: number, step: number): Promise<number> => {
    const loss = (await sums.loss.data())[0]! / seen;
    if (!Number.isFinite(loss)) {
      throw new TrainingError(
        'diverged',
        `the training loss became ${loss} in epoch ${epoch} by step ${step} of ${steps}; ` +
          `expected a finite loss: lower the learning rate (now ${hp.optimizer.learningRate}) or check the data's preprocessing`,
        { param: '/hyperparameters/optimizer/learningRate' },
      );
    }
    return loss;
  };

  for (let epoch = 1; epoch <= epochs; epoch++) {
    if (signal?.aborted) return { outcome: 'cancelled', metrics };
    batcher.shuffle(epoch);
    tf.tidy(() => {
      sums.loss.assign(tf.zerosLike(sums.loss));
      sums.correct.assign(tf.zerosLike(sums.correct));
    });
    const started = performance.now();
    let lastReport = started;
    let seen = 0;
    for (let step = 1; step <= steps; step++) {
      const batch = batcher.fill(step - 1);
      trainStep(batch);
      seen += batch.size;
      // Yields so IPC messages (a cancel) are handled between steps, each a few milliseconds.
      await new Promise(setImmediate);
      if (signal?.aborted) return { outcome: 'cancelled', metrics };
      const now = performance.now();
      if (step === steps || now - lastReport >= PROGRESS_INTERVAL_MS) {
        lastReport = now;
        const loss = await meanLoss(seen, epoch, step);
        await report({ type: 'progress', progress: { epoch, epochs, step, steps }, metrics: { loss } });
      }
    }
    const epochSeconds = (performance.now() - started) / 1000;
    const loss = await meanLoss(seen, epoch, steps);
    const correct = (await sums.correct.data())[0]!;
    metrics = { loss, accuracy: correct / seen, samplesPerSecond: seen / epochSeconds, epochSeconds };
    if (run.validation) {
      const val = await evaluate(model, run.validation);
      metrics.valLoss = val.loss;
      metrics.valAccuracy = val.accuracy;
    }
    await report({ type: 'metrics', epoch, metrics });
    const dir = path.join(task.checkpointsDir, checkpointName(epoch));
    await saveCheckpoint(run, dir, epoch, epoch * steps, metrics);
    await report({ type: 'checkpoint', epoch, step: epoch * steps, path: dir, metrics });
  }

  if (signal?.aborted) return { outcome: 'cancelled', metrics };
  if (run.test) {
    const result = await evaluate(model, run.test);
    metrics = { ...metrics, testLoss: result.loss, testAccuracy: result.accuracy };
  }
  await saveModel(model, task.modelDir);
  return { outcome: 'succeeded', modelId: task.modelId, metrics, backend: run.backend };
}

/**
 * Writes the model plus what a resume needs: state.json (epoch, global step, optimizer name
 * and config, the manifest of its weights) and optimizer.bin (their values). Optimizer weight
 * names use the layers' stable weight names (`dense_1/kernel/momentum`), not the
 * process-unique variable names, so a checkpoint reads the same in any process.
 */
async function saveCheckpoint(run: Run, dir: string, epoch: number, step: number, metrics: Record<string, number>): Promise<void> {
  const stableNames = new Map(run.model.weights.map((w) => [w.name, w.originalName]));
  const weights = await run.optimizer.getWeights();
  try {
    const named = weights.map(({ name, tensor }) => {
      const slash = name.lastIndexOf('/');
      const stable = slash < 0 ? undefined : stableNames.get(name.slice(0, slash));
      return { name: stable === undefined ? name : stable + name.slice(slash), tensor };
    });
    const { data, specs } = await tf.io.encodeWeights(named);
    const hp = run.task.spec.hyperparameters;
    const state = {
      jobId: run.task.jobId,
      epoch,
      step,
      epochs: hp.epochs,
      batchSize: hp.batchSize,
      seed: hp.seed ?? DEFAULT_SEED,
      metrics,
      optimizer: { name: hp.optimizer.name, config: hp.optimizer, file: OPTIMIZER_FILE, weights: specs },
    };
    await saveModel(run.model, dir, { [STATE_FILE]: JSON.stringify(state, null, 2), [OPTIMIZER_FILE]: new Uint8Array(data) });
  } finally {
    // getWeights() returns the optimizer's own variables plus a fresh iteration-count scalar;
    // only the latter belongs to us.
    for (const { tensor } of weights) if (!(tensor instanceof tf.Variable)) tensor.dispose();
  }
}

/** The model to train, with metadata describing how to use it once saved, and what to tell the user about it. */
async function prepareModel(task: TrainingTask, train: DatasetFiles): Promise<{ model: tf.LayersModel; logs: TrainingMessage[] }> {
  const { spec } = task;
  const logs: TrainingMessage[] = [];
  let model: tf.LayersModel;
  if (spec.type === 'finetune') {
    if (task.baseModelDir === undefined) {
      throw new TrainingError('invalid_spec', 'a finetune job needs a base model, but the task has no baseModelDir', { param: '/model/base' });
    }
    const loaded = await loadModel(task.baseModelDir);
    model = loaded.model;
    try {
      checkCompatible(model, train);
    } catch (err) {
      model.dispose();
      throw err;
    }
    for (const note of loaded.notes) logs.push({ type: 'log', level: 'info', message: note });
    const base = (model.getUserDefinedMetadata() as { tfjsAdapt?: Partial<ModelMetadata> } | undefined)?.tfjsAdapt?.preprocessing;
    const now = train.preprocessing;
    if (base !== undefined && (base.scale !== now.scale || base.offset !== now.offset)) {
      logs.push({
        type: 'log',
        level: 'warn',
        message:
          `the base model was trained on inputs scaled by ${base.scale} and offset by ${base.offset}, ` +
          `but dataset ${train.id} uses scale ${now.scale} and offset ${now.offset}`,
      });
    }
  } else {
    if (spec.model.architecture === undefined) {
      throw new TrainingError('invalid_spec', 'a train job needs model.architecture', { param: '/model/architecture' });
    }
    model = buildMlp(spec.model.architecture, train.featureShape, train.numClasses, spec.hyperparameters.seed ?? DEFAULT_SEED);
  }
  const metadata: ModelMetadata = {
    inputShape: train.featureShape,
    classes: train.classes,
    preprocessing: train.preprocessing,
    output: 'logits',
    jobId: task.jobId,
    ...(task.baseModelId !== undefined ? { baseModelId: task.baseModelId } : {}),
  };
  model.setUserDefinedMetadata({ tfjsAdapt: metadata });
  return { model, logs };
}

/** Validation and test sets must look like the training set, or the metrics mean nothing. */
function checkSameKind(train: DatasetFiles, other: DatasetFiles, param: string): void {
  const sameShape = train.featureShape.length === other.featureShape.length && train.featureShape.every((d, i) => d === other.featureShape[i]);
  if (!sameShape || train.numClasses !== other.numClasses) {
    throw new TrainingError(
      'incompatible_dataset',
      `dataset ${other.id} has featureShape [${other.featureShape.join(', ')}] and ${other.numClasses} classes; ` +
        `expected those of the training set ${train.id}: [${train.featureShape.join(', ')}] and ${train.numClasses} classes`,
      { param },
    );
  }
}
