/**
 * The shared training loop: one custom step (train-step.ts: forward, softmax cross-entropy on
 * logits, the method's terms, gradients, optimizer update) over seeded batches, with a learning-rate
 * schedule, throttled progress, per-epoch metrics, early stopping, atomic checkpoints, and resume
 * from the newest checkpoint. Methods plug in through methods/method.ts.
 */
import path from 'node:path';
import tf = require('@tensorflow/tfjs');
import type { Hyperparameters } from '../../src/schemas/job.js';
import { selectBackend } from './backend.js';
import { checkpointName, latestCheckpoint, readModelWeights, UnreadableCheckpoint, writeCheckpoint, type EarlyStoppingState } from './checkpoints.js';
import { Augmenter } from './augment.js';
import { Batcher, loadDataset, type Batch, type Dataset } from './data.js';
import { evaluate } from './evaluate.js';
import { featureCache } from './feature-cache.js';
import { runPredictions } from './predictions.js';
import type { FeatureCacheReport } from '../../src/jobs/feature-cache.js';
import type { Method } from './methods/method.js';
import { methodKind, trainsOnTarget as stepsTakeTarget } from '../../src/jobs/methods/registry.js';
import { createMethod, startModelOf } from './methods/registry.js';
import { buildModel, checkCompatible, loadModel, saveModel, type LoadedModel, type ModelMetadata } from './models.js';
import { attachNewHead } from './new-head.js';
import { featureLayerOf, trainingForward, type FeatureLayer } from './network.js';
import {
  createOptimizer,
  disposeOptimizer,
  learningRateSchedule,
  optimizerState,
  restoreOptimizerState,
  setLearningRate,
  type NamedTensor,
} from './optimizers.js';
import { augmentedRoles } from '../../src/jobs/augmentation.js';
import { describePreprocessing, samePreprocessing } from '../../src/jobs/preprocessing.js';
import { checkLayerNames, specProblems } from '../../src/jobs/spec-rules.js';
import {
  TrainingError,
  type DatasetFiles,
  type Position,
  type TestReport,
  type TrainingMessage,
  type TrainingResult,
  type TrainingTask,
} from '../../src/jobs/task.js';
import { denseStep, type DenseStep } from './dense-step.js';
import { signalSums, TARGET_LOSS, trainStep, type EpochSums, type StepSetup } from './train-step.js';
import { improves, MONITORS, VALIDATOR_SAMPLE_DEFAULT } from '../../src/jobs/validators.js';
import { EpochValidators } from './validators.js';
import { errorBound, errorBoundStandardError } from './error-bound.js';
import { ProgressThrottle } from './progress-throttle.js';

/** The seed of a spec without one, so that every run is reproducible. */
export const DEFAULT_SEED = 1;
/** Target batches are shuffled by a seed derived from the job's, so that their order is not the source's. */
const TARGET_SEED_OFFSET = 0x5eed;

type Report = (message: TrainingMessage) => Promise<void> | void;

/**
 * Runs one task to completion, cancellation or failure. A training task that finds checkpoints
 * in its checkpointsDir continues from the newest. Every tensor it creates is disposed before it
 * returns or throws, because the child process runs many jobs in turn.
 */
export async function runTraining(task: TrainingTask, report: Report, signal?: AbortSignal): Promise<TrainingResult> {
  const started = performance.now();
  const backend = await selectBackend();
  await report({ type: 'started', backend, numTensors: tf.memory().numTensors });
  // the API's rules, with its words: a task made by hand (or by an older API) meets them here
  const [broken] = specProblems(task.spec);
  if (broken) throw new TrainingError('invalid_spec', `${broken.pointer} ${broken.detail}`, { param: broken.pointer });
  if (task.spec.type === 'evaluate') return runEvaluation(task, backend, report, signal);
  if (task.spec.type === 'predict') return runPredictions(task, backend, report, signal);
  // the rules above guarantee what the checks below narrow; they guard the task contract only
  const hp = task.spec.hyperparameters;
  if (hp === undefined) throw new TrainingError('invalid_spec', 'the task has no hyperparameters', { param: '/hyperparameters' });
  const sets = await loadSets(task);
  const seed = hp.seed ?? DEFAULT_SEED;
  const { model, logs, newLayers, bases } = await prepareModel(task, sets.train.files, seed);
  let method: Method | undefined;
  let optimizer: tf.Optimizer | undefined;
  let sums: EpochSums | undefined;
  let dense: DenseStep | undefined;
  try {
    for (const log of logs) await report(log);
    const feature = featureLayerOf(model, task.spec.method?.featureLayer, '/method/featureLayer');
    method = createMethod({ model, spec: task.spec, feature, newLayers, ...(bases ? { bases } : {}), seed });
    disposeBases(bases);
    // Only then do target batches join the steps: adabn's target is for its finish alone.
    const trainsOnTarget = stepsTakeTarget(task.spec);
    if (trainsOnTarget && !sets.target) throw new TrainingError('invalid_spec', 'the task has no target dataset', { param: '/data/target' });
    const cache = await featureCache({
      spec: task.spec,
      model,
      variables: method.variables,
      train: sets.train,
      root: task.featuresRoot,
      baseModelId: task.baseModelId,
      backend,
    });
    const built = cache.report.status === 'built' ? cache.cached?.dir : undefined;
    if (task.spec.type === 'finetune') await report({ type: 'featureCache', report: cache.report, ...(built !== undefined ? { path: built } : {}) });
    optimizer = createOptimizer(hp.optimizer);
    sums = { loss: 0, correct: 0, signals: signalSums([...method.signals, ...(task.spec.data.targetLabelled ? [TARGET_LOSS] : [])]) };
    const augmented = augmentedRoles(task.spec);
    const augmenter = (role: 'source' | 'target', data: Dataset) =>
      hp.augment && augmented.includes(role)
        ? {
            augment: new Augmenter(hp.augment, {
              image: data.files.imageShape,
              pixels: data.files.featureDtype === 'uint8',
              param: '/hyperparameters/augment',
            }),
          }
        : {};
    // Same number of examples either way, so the same batches in the same order (seed, epoch); a job that augments never uses the cache.
    const batcher = new Batcher(cache.cached?.dataset ?? sets.train, hp.batchSize, { seed, ...augmenter('source', sets.train) });
    // Explicit transposes only pay off on wasm, the only backend that lacks the conv kernel
    // gradient too: tfjs-node's and the cpu backend's own gradients are the faster there.
    const forward = trainingForward(model, method.variables, feature, backend === 'wasm', cache.cached ? { cut: cache.cached.cut } : {});
    // no feature cache: its cut leaves layers untrained, which the dense step does not take
    dense = cache.cached ? undefined : denseStep(model, method, { featureShape: sets.train.files.featureShape, batchSize: hp.batchSize });
    const run: Run = {
      task,
      hp,
      backend,
      report,
      signal,
      started,
      sets,
      model,
      method,
      optimizer,
      forward,
      dense,
      sums,
      numClasses: sets.train.files.numClasses,
      targetLabelled: task.spec.data.targetLabelled === true,
      seed,
      batcher,
      targetBatcher: trainsOnTarget
        ? new Batcher(sets.target!, hp.batchSize, { seed: seed + TARGET_SEED_OFFSET, ...augmenter('target', sets.target!) })
        : undefined,
      targetCycle: 0,
      steps: batcher.steps,
      step: 0,
      seen: 0,
      checkpointed: 0,
      metrics: {},
      stableNames: stableNames(model, method),
      validators: epochValidators(task, model, feature, sets, seed),
      ...(task.spec.type === 'finetune' ? { featureCache: cache.report } : {}),
    };
    await resume(run);
    return await loop(run);
  } finally {
    disposeBases(bases);
    method?.dispose();
    dense?.dispose();
    if (optimizer) disposeOptimizer(optimizer);
    model.dispose();
    if (sums) tf.dispose(Object.values(sums.signals));
  }
}

/** The data a training job reads; `train` is its labelled set (see TrainingData). */
interface Sets {
  train: Dataset;
  validation?: Dataset;
  test?: Dataset;
  target?: Dataset;
  targetTest?: Dataset;
  sourceTest?: Dataset;
}

interface Run extends StepSetup {
  task: TrainingTask;
  hp: Hyperparameters;
  backend: string;
  report: Report;
  signal: AbortSignal | undefined;
  /** when this attempt started (performance.now()), for limits.maxRuntimeSeconds */
  started: number;
  sets: Sets;
  model: tf.LayersModel;
  seed: number;
  batcher: Batcher;
  targetBatcher: Batcher | undefined;
  /** which pass over the target set the target batcher is shuffled for (from 1; 0: none yet) */
  targetCycle: number;
  /** steps per epoch */
  steps: number;
  /** steps done since the start of training, over all epochs and attempts */
  step: number;
  /** examples of the current epoch seen so far */
  seen: number;
  /** the step of the newest checkpoint (0: none) */
  checkpointed: number;
  /** metrics of the last complete epoch */
  metrics: Record<string, number>;
  early?: EarlyStoppingState;
  /** variable name in this process -> name in checkpoints */
  stableNames: Map<string, string>;
  /** domain_adaptation with data.target: the label-free validators, reported with each epoch's metrics */
  validators: EpochValidators | undefined;
  /** finetune jobs: whether the trained layers train on cached features */
  featureCache?: FeatureCacheReport;
}

/** The label-free validators of a domain-adaptation job that has a target (src/jobs/validators.ts). */
function epochValidators(task: TrainingTask, model: tf.LayersModel, feature: FeatureLayer, sets: Sets, seed: number): EpochValidators | undefined {
  if (task.spec.type !== 'domain_adaptation' || sets.target === undefined) return undefined;
  const sampleSize = task.spec.hyperparameters?.validatorSample ?? VALIDATOR_SAMPLE_DEFAULT;
  return new EpochValidators(
    model,
    feature,
    { target: sets.target, source: sets.train, ...(sets.validation ? { validation: sets.validation } : {}) },
    { sampleSize, seed },
  );
}

async function loop(run: Run): Promise<TrainingResult> {
  const { hp, steps, report } = run;
  const { epochs } = hp;
  const total = epochs * steps;
  const learningRate = learningRateSchedule(hp, steps);
  let rate: number | undefined;
  const progress = new ProgressThrottle();
  while (run.step < total && !stoppedEarly(run)) {
    const epoch = Math.floor(run.step / steps) + 1;
    run.batcher.shuffle(epoch);
    const started = performance.now();
    let seenNow = 0;
    for (let i = run.step - (epoch - 1) * steps; i < steps; i++) {
      if (run.signal?.aborted) return stop(run);
      const next = learningRate(run.step);
      if (next !== rate) setLearningRate(run.optimizer, (rate = next));
      const batch = run.batcher.fill(i);
      try {
        trainStep(run, batch, run.targetBatcher && targetBatch(run), run.step / total);
      } catch (err) {
        throw missingKernel(err, run.backend) ?? err;
      }
      run.step++;
      run.seen += batch.size;
      seenNow += batch.size;
      // Yields so that IPC messages (a cancel) are handled between steps, each a few milliseconds.
      await new Promise(setImmediate);
      // After an epoch's last step, its bookkeeping (metrics, validation, checkpoint) comes first:
      // a checkpoint at an epoch's end always stands for a finished epoch.
      if (i < steps - 1) {
        if (run.signal?.aborted) return stop(run);
        await checkRuntime(run);
      }
      if (progress.due(i === steps - 1)) {
        const loss = meanLoss(run);
        await report({ type: 'progress', progress: { epoch, epochs, step: i + 1, steps }, metrics: { loss } });
      }
      const every = run.task.spec.checkpoint?.everySteps;
      if (every !== undefined && run.step % every === 0 && i < steps - 1) await checkpoint(run, await runningMetrics(run));
    }
    const epochSeconds = (performance.now() - started) / 1000;
    const metrics: Record<string, number> = { ...(await runningMetrics(run)), samplesPerSecond: seenNow / epochSeconds, epochSeconds };
    if (hp.lrSchedule) metrics.learningRate = rate!;
    const validation = run.sets.validation;
    const val = validation && { rows: validation.labels.length, ...(await evaluate(run.model, validation)) };
    if (val) {
      metrics.valLoss = val.loss;
      metrics.valAccuracy = val.accuracy;
    }
    if (run.validators) {
      Object.assign(metrics, await run.validators.compute());
      const bound = errorBound(metrics);
      if (bound !== undefined && val) {
        metrics.errorBound = bound;
        metrics.errorBoundStandardError = errorBoundStandardError(val.accuracy, val.rows);
      }
    }
    watchEarlyStopping(run, epoch, metrics);
    run.metrics = metrics;
    await report({ type: 'metrics', epoch, metrics });
    resetSums(run);
    await checkpoint(run, metrics);
    await checkRuntime(run);
  }
  if (run.signal?.aborted) return stop(run);
  return finish(run);
}

/**
 * A model whose gradients need a kernel the backend lacks fails the same way on every attempt:
 * it is reported as such at the first step, not retried. (On wasm the convolution kernels it
 * lacks are registered by gradients/wasm-kernels.ts.)
 */
function unsupported(kernel: string, backend: string): TrainingError {
  return new TrainingError(
    'unsupported_model',
    `training this model needs the ${kernel} kernel, which the ${backend} backend lacks; expected a model whose layers the backend can differentiate, ` +
      `or a worker with tfjs-node (TFJS_BACKEND=tensorflow)`,
    { param: '/model/base' },
  );
}

function missingKernel(err: unknown, backend: string): TrainingError | undefined {
  const kernel = /Kernel '(\w+)' not registered for backend/.exec((err as Error)?.message ?? '')?.[1];
  return kernel === undefined ? undefined : unsupported(kernel, backend);
}

/** The target batch of the current step: target batches cycle through the target set, reshuffled on every pass. */
function targetBatch(run: Run): Batch {
  const batcher = run.targetBatcher!;
  const cycle = Math.floor(run.step / batcher.steps) + 1;
  if (cycle !== run.targetCycle) {
    batcher.shuffle(cycle);
    run.targetCycle = cycle;
  }
  return batcher.fill(run.step % batcher.steps);
}

/** Where step `step` (steps done over the whole training) stands, as Position. */
function positionOf(run: Run, step: number): Position {
  return { epoch: Math.ceil(step / run.steps), step };
}

function meanLoss(run: Run): number {
  const loss = run.sums.loss / run.seen;
  if (!Number.isFinite(loss)) {
    const at = positionOf(run, run.step);
    throw new TrainingError(
      'diverged',
      `the training loss became ${loss} in epoch ${at.epoch} by step ${run.step - (at.epoch - 1) * run.steps} of ${run.steps}; ` +
        `expected a finite loss: lower the learning rate (now ${run.hp.optimizer.learningRate}) or check the data's preprocessing`,
      { param: '/hyperparameters/optimizer/learningRate' },
    );
  }
  return loss;
}

/** The epoch's figures so far: mean loss and accuracy over its examples, each signal's mean over its steps. */
async function runningMetrics(run: Run): Promise<Record<string, number>> {
  if (run.seen === 0) return {};
  const steps = run.step - (Math.ceil(run.step / run.steps) - 1) * run.steps;
  const metrics: Record<string, number> = { loss: meanLoss(run), accuracy: run.sums.correct / run.seen };
  for (const [name, sum] of Object.entries(run.sums.signals)) metrics[name] = (await sum.data())[0] / steps;
  return metrics;
}

function resetSums(run: Run): void {
  tf.tidy(() => {
    for (const v of Object.values(run.sums.signals)) v.assign(tf.zerosLike(v));
  });
  run.sums.loss = 0;
  run.sums.correct = 0;
  run.seen = 0;
}

function watchEarlyStopping(run: Run, epoch: number, metrics: Record<string, number>): void {
  const rule = run.hp.earlyStopping;
  if (rule === undefined) return;
  const monitor = rule.monitor ?? 'valLoss';
  const value = metrics[monitor];
  const early = run.early;
  const improved = early === undefined || improves(MONITORS[monitor].goal, value, early.best, rule.minDelta ?? 0);
  run.early = improved ? { bestEpoch: epoch, best: value, wait: 0, bestMetrics: metrics } : { ...early, wait: early.wait + 1 };
}

function stoppedEarly(run: Run): boolean {
  return run.early !== undefined && run.early.wait >= run.hp.earlyStopping!.patience;
}

/**
 * Writes a checkpoint of the current step and reports it. The optimizer's and the method's
 * variables are saved under stable names (`dense_1/kernel/momentum`, not the process-unique
 * variable names), so that a checkpoint reads the same in any process.
 */
async function checkpoint(run: Run, metrics: Record<string, number>): Promise<void> {
  const at = positionOf(run, run.step);
  const dir = path.join(run.task.checkpointsDir, checkpointName(at));
  const { sums, hp } = run;
  const signals: Record<string, number> = {};
  for (const [name, sum] of Object.entries(sums.signals)) signals[name] = (await sum.data())[0]!;
  const optimizer = await optimizerState(run.optimizer);
  try {
    await writeCheckpoint(dir, run.model, {
      state: {
        jobId: run.task.jobId,
        ...at,
        stepsPerEpoch: run.steps,
        epochs: hp.epochs,
        batchSize: hp.batchSize,
        seed: run.seed,
        sums: { loss: sums.loss, correct: sums.correct, seen: run.seen, signals },
        metrics: run.metrics,
        ...(run.early ? { earlyStopping: run.early } : {}),
      },
      optimizer: { name: hp.optimizer.name, tensors: optimizer.map(({ name, tensor }) => ({ name: stableSlotName(run, name), tensor })) },
      method: { name: run.method.name, tensors: Object.entries(run.method.state).map(([name, tensor]) => ({ name, tensor })) },
    });
  } finally {
    // The optimizer's own variables stay; the rest (its iteration count) was made for us.
    for (const { tensor } of optimizer) if (!(tensor instanceof tf.Variable)) tensor.dispose();
  }
  run.checkpointed = run.step;
  await run.report({ type: 'checkpoint', epoch: at.epoch, step: at.step, path: dir, metrics });
}

function stableNames(model: tf.LayersModel, method: Method): Map<string, string> {
  const names = new Map(model.weights.map((w) => [w.name, w.originalName]));
  for (const [stable, variable] of Object.entries(method.state)) names.set(variable.name, stable);
  return names;
}

/** `dense_1/kernel_3/momentum` -> `dense_1/kernel/momentum`: an optimizer slot under its variable's stable name. */
function stableSlotName(run: Run, name: string): string {
  const slash = name.lastIndexOf('/');
  const stable = slash < 0 ? undefined : run.stableNames.get(name.slice(0, slash));
  return stable === undefined ? name : stable + name.slice(slash);
}

/**
 * Continues from the newest checkpoint, if any: weights (batch-norm statistics included), the
 * optimizer's state, the method's variables, the position and the running sums of the epoch in
 * progress. The batches left in that epoch are the same as in an uninterrupted run, because each
 * epoch's order depends on (seed, epoch) only.
 */
async function resume(run: Run): Promise<void> {
  const { task, report } = run;
  const found = await latestCheckpoint(task.checkpointsDir, (message) => Promise.resolve(report({ type: 'log', level: 'warn', message })));
  if (found === undefined) return;
  const { dir, state, weights, optimizer: slots, method: own } = found;
  const name = path.basename(dir);
  const incompatible = (why: string) =>
    new TrainingError(
      'checkpoint_incompatible',
      `checkpoint ${name} cannot continue this job: ${why}; delete the job's checkpoints to train it from the start`,
    );
  try {
    const expected = { jobId: task.jobId, stepsPerEpoch: run.steps, epochs: run.hp.epochs, batchSize: run.hp.batchSize, seed: run.seed } as const;
    for (const [key, value] of Object.entries(expected)) {
      const saved = state[key as keyof typeof expected];
      if (saved !== value) throw incompatible(`it was written with ${key} ${saved}, the job has ${value}`);
    }
    try {
      run.model.loadWeights(weights);
    } catch (err) {
      throw incompatible(`its weights do not fit the model (${(err as Error).message})`);
    }
    checkSlots(run, slots, incompatible);
    await restoreOptimizerState(run.optimizer, slots);
    const expectedState = Object.keys(run.method.state).sort().join(', ');
    if (
      own
        .map((t) => t.name)
        .sort()
        .join(', ') !== expectedState
    ) {
      throw incompatible(`it holds method variables [${own.map((t) => t.name).join(', ')}], method ${run.method.name} has [${expectedState}]`);
    }
    for (const { name: key, tensor } of own) run.method.state[key].assign(tensor);
  } finally {
    tf.dispose([...Object.values(weights), ...slots.map((s) => s.tensor), ...own.map((t) => t.tensor)]);
  }

  run.step = state.step;
  run.checkpointed = state.step;
  run.seen = state.sums.seen;
  run.metrics = state.metrics;
  if (state.earlyStopping) run.early = state.earlyStopping;
  run.sums.loss = state.sums.loss;
  run.sums.correct = state.sums.correct;
  tf.tidy(() => {
    for (const [key, sum] of Object.entries(run.sums.signals)) sum.assign(tf.scalar(state.sums.signals[key] ?? 0));
  });
  const inEpoch = state.step - (state.epoch - 1) * run.steps;
  await report({
    type: 'log',
    level: 'info',
    message: `resuming from checkpoint ${name}: epoch ${state.epoch} of ${run.hp.epochs}, step ${inEpoch} of ${run.steps} (step ${state.step} of ${run.hp.epochs * run.steps} overall)`,
  });
}

/**
 * tfjs's optimizers match their slots to variables by position, so a checkpoint's slots must
 * come in the order of the variables being trained: `<variable>/<slot>` for each variable, once
 * per kind of slot.
 */
function checkSlots(run: Run, slots: NamedTensor[], incompatible: (why: string) => Error): void {
  const variables = run.method.variables.map((v) => run.stableNames.get(v.name) ?? v.name);
  const named = slots.filter((s) => s.name !== 'iter' && !s.name.startsWith('adam/'));
  const wrong = named.findIndex((s, i) => s.name.slice(0, s.name.lastIndexOf('/')) !== variables[i % variables.length]);
  if (named.length % variables.length !== 0 || wrong >= 0) {
    throw incompatible(`its optimizer state (${named.map((s) => s.name).join(', ')}) is not that of the variables trained (${variables.join(', ')})`);
  }
}

/** Stops at the current step; unless the abort's reason is 'cancel', with a checkpoint of it first. */
async function stop(run: Run): Promise<TrainingResult> {
  if (run.signal?.reason !== 'cancel' && run.step > run.checkpointed) await checkpoint(run, await runningMetrics(run));
  return { outcome: 'cancelled', metrics: run.metrics, stoppedAt: positionOf(run, run.step) };
}

/** limits.maxRuntimeSeconds, per attempt: past it, checkpoint and fail for good. */
async function checkRuntime(run: Run): Promise<void> {
  const limit = run.task.spec.limits?.maxRuntimeSeconds;
  if (limit === undefined || (performance.now() - run.started) / 1000 <= limit) return;
  if (run.step > run.checkpointed) await checkpoint(run, await runningMetrics(run));
  const at = positionOf(run, run.step);
  throw new TrainingError(
    'max_runtime',
    `the attempt ran longer than limits.maxRuntimeSeconds (${limit} s) and stopped in epoch ${at.epoch} at step ${at.step} of ${run.hp.epochs * run.steps}; ` +
      `its checkpoint is kept. Expected a run within the limit: raise it, or train fewer epochs`,
    { param: '/limits/maxRuntimeSeconds' },
  );
}

/** After the last epoch: the best weights (early stopping), the method's finish, the test reports, the model. */
async function finish(run: Run): Promise<TrainingResult> {
  const { task, sets, model, report } = run;
  let metrics = { ...run.metrics };
  const early = run.early;
  if (early !== undefined) {
    const epochsRun = Math.ceil(run.step / run.steps);
    const monitor = run.hp.earlyStopping!.monitor ?? 'valLoss';
    if (stoppedEarly(run)) {
      await report({
        type: 'log',
        level: 'info',
        message: `early stopping after epoch ${epochsRun}: ${monitor} has not improved on epoch ${early.bestEpoch}'s ${early.best} for ${early.wait} epochs`,
      });
    }
    if (early.bestEpoch !== epochsRun) {
      const best = path.join(task.checkpointsDir, checkpointName({ epoch: early.bestEpoch, step: early.bestEpoch * run.steps }));
      const weights = await readModelWeights(best).catch((err: unknown) => {
        // no other checkpoint holds these weights: the job fails, not retried (UnreadableCheckpoint)
        if (err instanceof UnreadableCheckpoint) err.message = `early stopping keeps the weights of epoch ${early.bestEpoch}, but ${err.message}`;
        throw err;
      });
      try {
        model.loadWeights(weights);
      } finally {
        tf.dispose(Object.values(weights));
      }
      await report({ type: 'log', level: 'info', message: `the model keeps the weights of epoch ${early.bestEpoch}, the best by ${monitor} (${early.best})` });
    }
    metrics = { ...early.bestMetrics, bestEpoch: early.bestEpoch, epochsRun };
  }
  if (run.method.finish) Object.assign(metrics, await run.method.finish({ model, target: sets.target }));
  let testReport: TestReport | undefined;
  if (task.spec.type === 'domain_adaptation') {
    const source = await evaluate(model, sets.sourceTest ?? sets.train);
    metrics.sourceAccuracy = source.accuracy;
    metrics.sourceLoss = source.loss;
    if (sets.targetTest) {
      const target = await evaluate(model, sets.targetTest, { report: true });
      metrics.targetAccuracy = target.accuracy;
      metrics.targetLoss = target.loss;
      testReport = target.report;
    }
  } else if (sets.test) {
    const test = await evaluate(model, sets.test, { report: true });
    metrics.testAccuracy = test.accuracy;
    metrics.testLoss = test.loss;
    testReport = test.report;
  }
  await saveModel(model, task.modelDir);
  return {
    outcome: 'succeeded',
    modelId: task.modelId,
    metrics,
    ...(testReport ? { report: testReport } : {}),
    ...(run.featureCache ? { featureCache: run.featureCache } : {}),
    backend: run.backend,
  };
}

/** An evaluate job: the base model on data.test, nothing trained or saved. A stop request is honoured once the pass ends (a few seconds). */
async function runEvaluation(task: TrainingTask, backend: string, report: Report, signal: AbortSignal | undefined): Promise<TrainingResult> {
  const { baseModelDir, baseModelId } = task;
  const files = task.data.test;
  if (files === undefined) throw new TrainingError('invalid_spec', 'the task has no test dataset', { param: '/data/test' });
  if (baseModelDir === undefined || baseModelId === undefined) {
    throw new TrainingError('invalid_spec', 'an evaluate job needs a base model, but the task has none', { param: '/model/base' });
  }
  const test = await loadDataset(files, '/data/test');
  const { model, notes } = await loadModel(baseModelDir);
  try {
    checkCompatible(model, files);
    for (const message of [...notes, ...preprocessingWarnings(model, files)]) await report({ type: 'log', level: 'info', message });
    const result = await evaluate(model, test, { report: true });
    if (signal?.aborted) return { outcome: 'cancelled', metrics: {}, stoppedAt: { epoch: 0, step: 0 } };
    return {
      outcome: 'succeeded',
      modelId: baseModelId,
      metrics: { testAccuracy: result.accuracy, testLoss: result.loss, testExamples: files.numExamples },
      report: result.report!,
      backend,
    };
  } finally {
    model.dispose();
  }
}

interface Prepared {
  model: tf.LayersModel;
  logs: TrainingMessage[];
  newLayers: Set<string>;
  /** from a method's startModel (multi_source): each base's weights by name, for the method; disposed once it is built */
  bases?: tf.NamedTensorMap[];
}

/** The model to train, with metadata saying how to use it once saved, and what to tell the user about it. */
async function prepareModel(task: TrainingTask, train: DatasetFiles, seed: number): Promise<Prepared> {
  const { spec } = task;
  let loaded: LoadedModel;
  let bases: tf.NamedTensorMap[] | undefined;
  const startModel = startModelOf(spec);
  if (spec.type === 'train' || spec.model.architecture !== undefined) {
    if (spec.model.architecture === undefined) {
      throw new TrainingError('invalid_spec', 'the task has no model.architecture', { param: '/model/architecture' });
    }
    loaded = { model: buildModel(spec.model.architecture, train.featureShape, train.numClasses, seed), notes: [], newLayers: [] };
  } else if (startModel) {
    ({ loaded, bases } = await startModel(task, train));
  } else {
    if (task.baseModelDir === undefined) {
      throw new TrainingError('invalid_spec', `a ${spec.type} job needs a base model, but the task has no baseModelDir`, { param: '/model/base' });
    }
    loaded = await loadModel(task.baseModelDir);
    // the API checked the names against the stored model.json; a task made by hand meets the same rule here
    let unknown: { pointer: string; detail: string } | undefined;
    checkLayerNames(
      spec,
      task.baseModelId ?? loaded.model.name,
      loaded.model.layers.map((l) => l.name),
      (pointer, detail) => void (unknown ??= { pointer, detail }),
    );
    if (unknown !== undefined) {
      loaded.model.dispose();
      throw new TrainingError('invalid_spec', `${unknown.pointer} ${unknown.detail}`, { param: unknown.pointer });
    }
    const strategy = spec.strategy;
    if (strategy?.newHead) {
      const { model, newLayers, note } = await attachNewHead(loaded.model, {
        units: train.numClasses,
        seed,
        ...(strategy.featureLayer !== undefined ? { featureLayer: strategy.featureLayer } : {}),
        ...(strategy.head !== undefined ? { head: strategy.head } : {}),
      }).catch((err: unknown) => {
        loaded.model.dispose();
        throw err;
      });
      loaded = { model, newLayers, notes: [...loaded.notes, note] };
    }
    try {
      checkCompatible(loaded.model, train);
    } catch (err) {
      loaded.model.dispose();
      throw err;
    }
  }
  const { model } = loaded;
  const logs: TrainingMessage[] = loaded.notes.map((message) => ({ type: 'log', level: 'info', message }));
  for (const message of preprocessingWarnings(model, train)) logs.push({ type: 'log', level: 'warn', message });
  const metadata: ModelMetadata = {
    inputShape: train.featureShape,
    classes: train.classes,
    preprocessing: train.preprocessing,
    output: 'logits',
    jobId: task.jobId,
    method: methodKind(spec),
    ...(task.baseModelId !== undefined ? { baseModelId: task.baseModelId } : {}),
    ...(task.baseModelIds !== undefined ? { baseModelIds: task.baseModelIds } : {}),
  };
  model.setUserDefinedMetadata({ tfjsAdapt: metadata });
  return { model, logs, newLayers: new Set(loaded.newLayers), ...(bases ? { bases } : {}) };
}

function disposeBases(bases: tf.NamedTensorMap[] | undefined): void {
  for (const b of bases ?? []) tf.dispose(Object.values(b));
}

/** A warning when the model was trained on differently preprocessed inputs than `data` gives it. */
function preprocessingWarnings(model: tf.LayersModel, data: DatasetFiles): string[] {
  const base = (model.getUserDefinedMetadata() as { tfjsAdapt?: Partial<ModelMetadata> } | undefined)?.tfjsAdapt?.preprocessing;
  const now = data.preprocessing;
  if (base === undefined || samePreprocessing(base, now)) return [];
  return [`the base model was trained on inputs by ${describePreprocessing(base)}, but dataset ${data.id} is fed by ${describePreprocessing(now)}`];
}

/** The labelled training set and every other set the job names, loaded and checked against it. */
async function loadSets(task: TrainingTask): Promise<Sets> {
  const { data, spec } = task;
  const trainParam = spec.type === 'domain_adaptation' ? '/data/source' : '/data/train';
  if (data.train === undefined) throw new TrainingError('invalid_spec', 'the task has no training dataset', { param: trainParam });
  const sets: Sets = { train: await loadDataset(data.train, trainParam) };
  for (const role of ['validation', 'test', 'targetTest', 'sourceTest', 'target'] as const) {
    const files = data[role];
    if (files === undefined) continue;
    checkSameKind(data.train, files, `/data/${role}`, role !== 'target' || spec.data.targetLabelled === true);
    sets[role] = await loadDataset(files, `/data/${role}`);
  }
  return sets;
}

/** Other sets must look like the training set, or the metrics mean nothing (classes only where labels are used). */
function checkSameKind(train: DatasetFiles, other: DatasetFiles, param: string, labelled: boolean): void {
  const sameShape = train.featureShape.length === other.featureShape.length && train.featureShape.every((d, i) => d === other.featureShape[i]);
  if (!sameShape || (labelled && train.numClasses !== other.numClasses)) {
    throw new TrainingError(
      'incompatible_dataset',
      `dataset ${other.id} has featureShape [${other.featureShape.join(', ')}] and ${other.numClasses} classes; ` +
        `expected those of the training set ${train.id}: [${train.featureShape.join(', ')}]${labelled ? ` and ${train.numClasses} classes` : ''}`,
      { param },
    );
  }
}
