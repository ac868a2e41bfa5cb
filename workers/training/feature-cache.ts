/**
 * The feature cache: when the frozen part of a model gives the same output for an example at
 * every step, that output is computed once per (base model, dataset, preprocessing, cut layer,
 * backend), kept under the artifacts' features root, and the trained layers train on it; an
 * epoch then costs what the trained layers cost. The saved model is still the whole network.
 * The spec's side of the rule is src/jobs/feature-cache.ts; the model's side is here: the cut is
 * the one layer feeding the first trained layer, everything the output needs must be computable
 * from its output alone, and nothing before it may draw random numbers (dropout, noise).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tf = require('@tensorflow/tfjs');
import { FEATURE_CACHE_FILE, featureCacheDir } from '../../src/artifacts/feature-cache.js';
import { FEATURE_CACHE_MAX_BYTES, featureCacheRefusal, type FeatureCacheReport } from '../../src/jobs/feature-cache.js';
import type { JobSpec } from '../../src/schemas/job.js';
import { Batcher, type Dataset } from './data.js';
import { inferenceBatchRows } from './eval-batch-rows.js';

/** Raised when the file layout changes meaning; older caches are then rebuilt, not misread. */
const FORMAT = 1;
const META_FILE = 'meta.json';
/** Layers whose training-mode output is random. */
const RANDOM_LAYER = /Dropout|Noise/;

export interface FeatureCacheOptions {
  spec: JobSpec;
  model: tf.LayersModel;
  /** what the optimizer trains */
  variables: readonly tf.Variable[];
  train: Dataset;
  /** the task's featuresRoot and baseModelId; without them nothing is cached */
  root: string | undefined;
  baseModelId: string | undefined;
  backend: string;
}

export interface FeatureCache {
  report: FeatureCacheReport;
  /** when used: the frozen part's outputs as a dataset, and the layer they are the outputs of */
  cached?: { dataset: Dataset; cut: tf.layers.Layer; dir: string };
}

/** The training set as the trained layers see it: from the cache when it can be, else unchanged (`cached` undefined, `report.reason` says why). */
export async function featureCache(opts: FeatureCacheOptions): Promise<FeatureCache> {
  const started = performance.now();
  const unused = (reason: string): FeatureCache => ({ report: { status: 'unused', reason, seconds: 0 } });
  const refused = featureCacheRefusal(opts.spec);
  if (refused !== undefined) return unused(refused);
  if (opts.root === undefined || opts.baseModelId === undefined) return unused('the task names no feature cache directory or base model');
  const plan = cutOf(opts.model, opts.variables);
  if (typeof plan === 'string') return unused(plan);
  const { train } = opts;
  const shape = (plan.outputShape as (number | null)[]).slice(1) as number[];
  const size = shape.reduce((a, b) => a * b, 1);
  const bytes = train.labels.length * size * 4;
  if (bytes > FEATURE_CACHE_MAX_BYTES) {
    return unused(
      `the outputs of layer '${plan.name}' would take ${bytes} bytes for this dataset, more than the ${FEATURE_CACHE_MAX_BYTES} a cache may; freeze up to a later, smaller layer`,
    );
  }
  const files = train.files;
  // The frozen part's weights are the base's; what else its outputs depend on is its layers'
  // configuration (names alone could repeat: a head's layers are named alike on any cut).
  const frozen = opts.model.layers.filter((l) => ancestors(plan).includes(l)).map((l) => [l.getClassName(), l.getConfig()]);
  const key = createHash('sha256')
    .update(JSON.stringify({ format: FORMAT, frozen, shape, preprocessing: files.preprocessing, featureShape: files.featureShape, backend: opts.backend }))
    .digest('hex')
    .slice(0, 32);
  const dir = featureCacheDir(opts.root, opts.baseModelId, files.id, key);
  let features = await readCache(dir, bytes);
  const status = features === undefined ? 'built' : 'reused';
  if (features === undefined) {
    features = await computeFeatures(opts.model, plan, train, size);
    await writeCache(dir, features, { format: FORMAT, baseModelId: opts.baseModelId, datasetId: files.id, layer: plan.name, shape, backend: opts.backend });
  }
  const dataset: Dataset = {
    files: { ...files, featureShape: shape, featureDtype: 'float32', preprocessing: { scale: 1, offset: 0 } },
    features,
    labels: train.labels,
    featureSize: size,
  };
  const seconds = (performance.now() - started) / 1000;
  return { report: { status, layer: plan.name, seconds, bytes }, cached: { dataset, cut: plan, dir } };
}

/** The layer whose output the trained layers start from, or why there is none. */
export function cutOf(model: tf.LayersModel, variables: readonly tf.Variable[]): tf.layers.Layer | string {
  const trained = new Set(variables.map((v) => v.name));
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const first = layers.find((l) => l.trainableWeights.some((w) => trained.has(w.name)));
  if (first === undefined) return 'no layer is trained';
  if (first.inboundNodes.length > 1) return `the first trained layer '${first.name}' is used more than once`;
  let cut = single(first);
  // A dropout in front of the trained layers (a new head's) belongs to them, and a flatten only
  // relabels the same values: the cut goes before either.
  while (cut !== undefined && (RANDOM_LAYER.test(cut.getClassName()) || cut.getClassName() === 'Flatten') && cut.inboundNodes.length === 1) cut = single(cut);
  if (cut === undefined) return `the first trained layer '${first.name}' does not take the output of one layer`;
  if (cut.getClassName() === 'InputLayer') return `the first trained layer '${first.name}' takes the model's input: nothing before it is frozen`;
  if (cut.inboundNodes.length > 1) return `layer '${cut.name}' is used more than once, so its output is ambiguous`;
  const random = ancestors(cut).find((l) => RANDOM_LAYER.test(l.getClassName()));
  if (random !== undefined)
    return `layer '${random.name}' (${random.getClassName()}) before the frozen part's end '${cut.name}' draws new random numbers at every step`;
  if (!reachable(model, cut)) return `the trained layers also need outputs of frozen layers other than '${cut.name}' (a skip connection around the cut)`;
  return cut;
}

/** The one layer feeding `layer`, if one does. */
function single(layer: tf.layers.Layer): tf.layers.Layer | undefined {
  const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
  return inbound.length === 1 ? inbound[0] : undefined;
}

/** `layer` and every layer its output depends on. */
function ancestors(layer: tf.layers.Layer): tf.layers.Layer[] {
  const seen = new Set<tf.layers.Layer>();
  const stack = [layer];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    for (const node of next.inboundNodes) stack.push(...node.inboundLayers);
  }
  return [...seen];
}

/** Whether the model's output follows from `cut`'s output alone, walking the graph as the forward does. */
function reachable(model: tf.LayersModel, cut: tf.layers.Layer): boolean {
  const known = new Set([(cut.output as tf.SymbolicTensor).id]);
  for (const layer of model.layers) {
    if (layer === cut) continue;
    for (const node of layer.inboundNodes) {
      if (node.inputTensors.length > 0 && node.inputTensors.every((t) => known.has(t.id))) node.outputTensors.forEach((t) => known.add(t.id));
    }
  }
  return known.has(model.outputs[0].id);
}

/** The outputs of `cut` for every example of `data`, in stored order, in inference mode. */
async function computeFeatures(model: tf.LayersModel, cut: tf.layers.Layer, data: Dataset, size: number): Promise<Float32Array> {
  // Shares the model's layers: disposing it would dispose their weights, so it is left to the collector.
  const frozen = tf.model({ inputs: model.inputs, outputs: cut.output });
  const batcher = new Batcher(data, inferenceBatchRows(model, data.files));
  const out = new Float32Array(data.labels.length * size);
  for (let step = 0; step < batcher.steps; step++) {
    const batch = batcher.fill(step);
    const y = tf.tidy(() => frozen.apply(tf.tensor(batch.x, batch.shape, 'float32'), { training: false }) as tf.Tensor);
    out.set(await y.data(), step * batcher.batchSize * size);
    y.dispose();
    // Lets the process handle IPC (cancel requests, heartbeats) between batches.
    await new Promise(setImmediate);
  }
  return out;
}

/** The cached features when `dir` holds a complete cache of `bytes` bytes. */
async function readCache(dir: string, bytes: number): Promise<Float32Array | undefined> {
  const buffer = await readFile(path.join(dir, FEATURE_CACHE_FILE)).catch(() => undefined);
  if (buffer === undefined || buffer.byteLength !== bytes) return undefined;
  // A fresh copy: a Float32Array view needs an aligned offset, which a pooled Buffer may not have.
  return new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
}

/** Writes meta.json, then the features under a temp name renamed into place, so a reader sees all of them or none. */
async function writeCache(dir: string, features: Float32Array, meta: Record<string, unknown>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, META_FILE), JSON.stringify(meta));
  const tmp = path.join(dir, `${FEATURE_CACHE_FILE}.tmp-${process.pid}`);
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path.join(dir, FEATURE_CACHE_FILE)).catch(async (err) => {
    await rm(tmp, { force: true });
    throw err;
  });
}
