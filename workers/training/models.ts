/**
 * Models: build an MLP or a CNN, load a base model (a new head is new-head.ts's), check it fits
 * the data, and save it atomically in the standard LayersModel format.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import tf = require('@tensorflow/tfjs');
import type { Architecture } from '../../src/schemas/job.js';
import { cnnInputShape } from '../../src/jobs/input-shape.js';
import type { Preprocessing } from '../../src/jobs/preprocessing.js';
import { TrainingError, type DatasetFiles } from '../../src/jobs/task.js';
import { thawLayers } from './keras-layers.js';

type DenseActivation = NonNullable<Parameters<typeof tf.layers.dense>[0]['activation']>;

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
const BASE_PARAM = '/model/base';

/** Stored in model.json as `userDefinedMetadata.tfjsAdapt`, so a downloaded model explains itself. */
export interface ModelMetadata {
  inputShape: number[];
  classes: string[];
  preprocessing: Preprocessing;
  output: 'logits';
  jobId: string;
  baseModelId?: string;
  /** multi_source: the models it started from (their mean) */
  baseModelIds?: string[];
  /** the fine-tuning strategy or adaptation method it was trained with */
  method?: string;
}

/** Batch-norm momentum of PyTorch's default (0.1 there, which is 0.9 in Keras's convention). */
const BATCH_NORM_MOMENTUM = 0.9;

/**
 * PyTorch's default initialisation of a layer with `fanIn` inputs, U(±1/sqrt(fanIn)) for weights
 * and biases, rather than Keras's Glorot/zeros, so that recipes written for PyTorch (the seed's
 * among them) carry over. Distinct seeds per tensor: one seed everywhere would correlate layers
 * of equal shape.
 */
function torchInit(fanIn: number, seed: number) {
  const limit = 1 / Math.sqrt(fanIn);
  return {
    kernelInitializer: tf.initializers.randomUniform({ minval: -limit, maxval: limit, seed }),
    biasInitializer: tf.initializers.randomUniform({ minval: -limit, maxval: limit, seed: seed + 1 }),
  };
}

/**
 * The model an architecture describes, for examples of `featureShape` and `numClasses` classes.
 * Its last layer returns logits (the loss applies the softmax). Layer names are stable (`conv_1`,
 * `dense_1`, ..., `logits`) because saved weights are matched to layers by name.
 */
export function buildModel(architecture: Architecture, featureShape: number[], numClasses: number, seed: number): tf.Sequential {
  return architecture.kind === 'cnn' ? buildCnn(architecture, featureShape, numClasses, seed) : buildMlp(architecture, featureShape, numClasses, seed);
}

export function buildMlp(architecture: Architecture, inputShape: number[], numClasses: number, seed: number): tf.Sequential {
  const model = tf.sequential({ name: 'mlp' });
  const flat = inputShape.length === 1;
  if (!flat) model.add(tf.layers.flatten({ inputShape, name: 'flatten' }));
  addDenseLayers(
    model,
    architecture,
    inputShape.reduce((a, b) => a * b, 1),
    numClasses,
    seed,
    flat ? inputShape : undefined,
  );
  return model;
}

/**
 * Conv blocks ("same" convolution, optional batch norm, activation, 2x2 pooling), flatten, dense
 * layers, logits. Examples that are not [h, w, c] are reshaped by a first layer, so the model
 * still takes the dataset's examples as they are.
 */
export function buildCnn(architecture: Architecture, featureShape: number[], numClasses: number, seed: number): tf.Sequential {
  const image = cnnInputShape(featureShape);
  if (image === undefined) {
    throw new TrainingError(
      'invalid_spec',
      `a cnn needs image-like examples: featureShape [h, w, c], [h, w] or a square [n]; got [${featureShape.join(', ')}]`,
      {
        param: '/model/architecture/kind',
      },
    );
  }
  const model = tf.sequential({ name: 'cnn' });
  const reshaped = featureShape.length !== 3;
  if (reshaped) model.add(tf.layers.reshape({ inputShape: featureShape, targetShape: image, name: 'reshape' }));
  const kernelSize = architecture.kernelSize ?? 3;
  const pooling = architecture.pooling ?? 'max';
  const filters = architecture.filters ?? [16, 32];
  const activation = (architecture.activation ?? 'relu') as DenseActivation;
  let [height, width, channels] = image;
  filters.forEach((n, i) => {
    const name = `conv_${i + 1}`;
    model.add(
      tf.layers.conv2d({
        filters: n,
        kernelSize,
        padding: 'same',
        activation: architecture.batchNorm ? 'linear' : activation,
        name,
        ...torchInit(kernelSize * kernelSize * channels, seed + 2 * i),
        ...(i === 0 && !reshaped ? { inputShape: image } : {}),
      }),
    );
    if (architecture.batchNorm) addBatchNorm(model, name, activation);
    channels = n;
    if (pooling === 'none') return;
    if (height < 2 || width < 2) {
      throw new TrainingError(
        'invalid_spec',
        `conv block ${i + 1} gets ${height}x${width} images, too small for its 2x2 pooling; use fewer filters entries or pooling "none"`,
        {
          param: '/model/architecture/filters',
        },
      );
    }
    const pool = { poolSize: 2, name: `pool_${i + 1}` };
    model.add(pooling === 'max' ? tf.layers.maxPooling2d(pool) : tf.layers.averagePooling2d(pool));
    height = Math.floor(height / 2);
    width = Math.floor(width / 2);
  });
  model.add(tf.layers.flatten({ name: 'flatten' }));
  addDenseLayers(model, architecture, height * width * channels, numClasses, seed + 2 * filters.length);
  return model;
}

/** The hidden dense layers `dense_1`, ... and the `logits` layer; `inputShape` when they come first. */
function addDenseLayers(model: tf.Sequential, architecture: Architecture, fanIn: number, numClasses: number, seed: number, inputShape?: number[]): void {
  // The schema's activations are all tfjs identifiers; its type is only widened to string.
  const activation = (architecture.activation ?? 'relu') as DenseActivation;
  const units = [...architecture.hidden, numClasses];
  units.forEach((n, i) => {
    const last = i === units.length - 1;
    const name = last ? 'logits' : `dense_${i + 1}`;
    const normalised = !last && architecture.batchNorm === true;
    model.add(
      tf.layers.dense({
        units: n,
        activation: last || normalised ? 'linear' : activation,
        name,
        ...torchInit(fanIn, seed + 2 * i),
        ...(i === 0 && inputShape ? { inputShape } : {}),
      }),
    );
    if (normalised) addBatchNorm(model, name, activation);
    fanIn = n;
  });
}

function addBatchNorm(model: tf.Sequential, after: string, activation: DenseActivation): void {
  model.add(tf.layers.batchNormalization({ momentum: BATCH_NORM_MOMENTUM, name: `${after}_bn` }));
  model.add(tf.layers.activation({ activation, name: `${after}_act` }));
}

export interface LoadOptions {
  /** the spec field that named the model, blamed for its problems; default /model/base */
  param?: string;
}

export interface LoadedModel {
  model: tf.LayersModel;
  /** what was changed on the way in, for the job's log */
  notes: string[];
  /** names of layers that are not the base model's (a new head, new-head.ts) */
  newLayers: string[];
}

/**
 * Loads a LayersModel from `dir` (model.json plus the weight files its manifest names) without
 * a file-system IO handler, so it works on every backend. A softmax on the output is replaced
 * by `linear`, because training and the saved model work on logits; `notes` says so.
 */
export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const param = opts.param ?? BASE_PARAM;
  const invalid = (message: string) => new TrainingError('invalid_model', `base model in ${dir}: ${message}`, { param });
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(path.join(dir, MODEL_FILE), 'utf8')) as tf.io.ModelJSON;
  } catch (err) {
    throw invalid(`${MODEL_FILE} could not be read as JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || json.modelTopology == null || json.format === 'graph-model') {
    throw invalid(`${MODEL_FILE} is not a tfjs LayersModel; expected a "modelTopology" describing layers (graph models cannot be trained)`);
  }
  // Without a manifest tfjs would quietly start from fresh random weights.
  if (!Array.isArray(json.weightsManifest) || json.weightsManifest.length === 0) {
    throw invalid(`${MODEL_FILE} has no "weightsManifest"; expected the list of weight files of the pretrained model`);
  }
  const notes: string[] = [];
  const thawed = thawLayers(json.modelTopology);
  if (thawed > 0) notes.push(`${thawed} layers saved as not trainable were made trainable: the strategy decides what trains`);
  const topology = layerList(json.modelTopology);
  const output = topology?.output;
  if (output?.config?.activation === 'softmax') {
    output.config.activation = 'linear';
    notes.push(`the base model's softmax output was replaced by logits (training applies the softmax in the loss)`);
  }
  try {
    const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
      const buffers: ArrayBuffer[] = [];
      for (const group of manifest) {
        for (const p of group.paths) {
          const file = path.resolve(dir, p);
          if (path.isAbsolute(p) || path.relative(dir, file).split(path.sep)[0] === '..') {
            throw invalid(`weights path '${p}' points outside the model directory`);
          }
          const bytes = await readFile(file).catch((err: Error) => {
            throw invalid(`weights file '${p}' could not be read (${err.message})`);
          });
          buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        }
      }
      return [tf.io.getWeightSpecs(manifest), tf.io.CompositeArrayBuffer.join(buffers)];
    });
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts), { strict: true });
    return { model, notes, newLayers: [] };
  } catch (err) {
    // tfjs's own messages (a malformed manifest, weights that do not match the layers) are
    // kept, but blamed on the base model rather than left as an unexplained retryable error.
    throw err instanceof TrainingError ? err : invalid((err as Error).message);
  }
}

type LayerJson = { class_name?: string; name?: string; config?: Record<string, unknown>; inbound_nodes?: unknown };

/** The layers of a topology and the one producing its output, in either topology layout. */
function layerList(topology: Record<string, unknown>): { layers: LayerJson[]; output: LayerJson | undefined } | undefined {
  // Keras exports wrap the model in `model_config`; tfjs writes it at the top level.
  const model = (topology.model_config ?? topology) as { class_name?: string; config?: unknown };
  const config = model.config as { layers?: LayerJson[]; output_layers?: unknown[][] } | LayerJson[] | undefined;
  const layers = Array.isArray(config) ? config : config?.layers;
  if (layers === undefined || layers.length === 0) return undefined;
  if (Array.isArray(config) || model.class_name === 'Sequential') return { layers, output: layers[layers.length - 1] };
  const outputs = config?.output_layers;
  if (outputs?.length !== 1) return { layers, output: undefined };
  const name = outputs[0]?.[0];
  return { layers, output: layers.find((l) => layerName(l) === name) };
}

const layerName = (l: LayerJson) => l.name ?? (l.config?.name as string | undefined);

/**
 * Throws `incompatible_model` unless the model takes one input of the dataset's feature shape
 * and returns one score per class of the dataset.
 */
export function checkCompatible(model: tf.LayersModel, data: DatasetFiles, param = BASE_PARAM): void {
  checkTakes(model, data, param);
  const output = model.outputs[0].shape;
  if (output.length !== 2 || output[1] !== data.numClasses) {
    throw incompatible(
      model,
      data,
      param,
      `its output has shape [${output.map((d) => d ?? '?').join(', ')}]; expected [?, ${data.numClasses}] (one logit per class)`,
    );
  }
}

/** Whether `model` takes `data`'s examples and answers one row of logits each, whatever its classes (a predict job). */
export function checkTakes(model: tf.LayersModel, data: DatasetFiles, param = BASE_PARAM): void {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw incompatible(model, data, param, `it has ${model.inputs.length} inputs and ${model.outputs.length} outputs; expected one of each`);
  }
  const input = model.inputs[0].shape.slice(1);
  const fits = input.length === data.featureShape.length && input.every((d, i) => d === null || d === data.featureShape[i]);
  if (!fits) {
    throw incompatible(
      model,
      data,
      param,
      `it takes inputs of shape [${input.map((d) => d ?? '?').join(', ')}]; expected the dataset's featureShape [${data.featureShape.join(', ')}]`,
    );
  }
  const output = model.outputs[0].shape;
  if (output.length !== 2) {
    throw incompatible(model, data, param, `its output has shape [${output.map((d) => d ?? '?').join(', ')}]; expected [?, classes] (one logit per class)`);
  }
}

const incompatible = (model: tf.LayersModel, data: DatasetFiles, param: string, message: string) =>
  new TrainingError('incompatible_model', `base model ${model.name} does not fit dataset ${data.id}: ${message}`, { param });

/**
 * Saves `model` into `dir` as model.json + weights.bin (plus `extra` files) atomically: the
 * files are written and synced in a sibling temp dir which then replaces `dir`, so a reader or
 * a crash never sees a half-written model.
 */
export async function saveModel(model: tf.LayersModel, dir: string, extra: Record<string, string | Uint8Array> = {}): Promise<void> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save({
    save: async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  });
  const artifacts = captured!;
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology!,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
  const weights = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  await writeDirAtomically(dir, { [MODEL_FILE]: JSON.stringify(modelJson), [WEIGHTS_FILE]: new Uint8Array(weights), ...extra });
}

async function writeDirAtomically(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  await replaceDirAtomically(dir, async (tmp) => {
    for (const [name, content] of Object.entries(files)) {
      const handle = await open(path.join(tmp, name), 'w');
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  });
}

/**
 * Fills a sibling temp dir of `dir` (`fill` writes and syncs its files) which then replaces `dir`,
 * so a reader or a crash never sees half of it; a failed fill leaves `dir` as it was.
 */
export async function replaceDirAtomically(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  const old = `${dir}.old-${process.pid}`;
  // A previous attempt of this job that crashed in this process id may have left these behind.
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  // rename() cannot replace a non-empty directory, so an existing one (a retried job
  // rewriting its checkpoint) is moved aside first and removed after the swap.
  const replaced = await rename(dir, old).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
  await rename(tmp, dir);
  if (replaced) await rm(old, { recursive: true, force: true });
}
