/**
 * Models: build the MLP, load a base model, check it fits the data, save it atomically in the
 * standard LayersModel format, and the forward pass the training loop differentiates.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Architecture } from '../src/schemas/job.js';
import { TrainingError, type DatasetFiles } from './task.js';

type DenseActivation = NonNullable<Parameters<typeof tf.layers.dense>[0]['activation']>;

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
const BASE_PARAM = '/model/base';

/** Stored in model.json as `userDefinedMetadata.tfjsAdapt`, so a downloaded model explains itself. */
export interface ModelMetadata {
  inputShape: number[];
  classes: string[];
  preprocessing: { scale: number; offset: number };
  output: 'logits';
  jobId: string;
  baseModelId?: string;
}

/**
 * An MLP whose last layer returns logits (the loss applies the softmax). Layer names are
 * stable (`dense_1`, ..., `logits`) because saved weights are matched to layers by name.
 * Weights and biases start like PyTorch's nn.Linear, U(±1/sqrt(fanIn)), rather than Keras's
 * Glorot/zeros, so that recipes written for PyTorch (the seed's among them) carry over.
 */
export function buildMlp(architecture: Architecture, inputShape: number[], numClasses: number, seed: number): tf.Sequential {
  const model = tf.sequential({ name: 'mlp' });
  const flat = inputShape.length === 1;
  if (!flat) model.add(tf.layers.flatten({ inputShape, name: 'flatten' }));
  const units = [...architecture.hidden, numClasses];
  let fanIn = inputShape.reduce((a, b) => a * b, 1);
  units.forEach((n, i) => {
    const last = i === units.length - 1;
    const limit = 1 / Math.sqrt(fanIn);
    model.add(
      tf.layers.dense({
        units: n,
        // The schema's activations are all tfjs identifiers; its type is only widened to string.
        activation: last ? 'linear' : ((architecture.activation ?? 'relu') as DenseActivation),
        name: last ? 'logits' : `dense_${i + 1}`,
        // Distinct seeds per tensor: one seed everywhere would correlate layers of equal shape.
        kernelInitializer: tf.initializers.randomUniform({ minval: -limit, maxval: limit, seed: seed + 2 * i }),
        biasInitializer: tf.initializers.randomUniform({ minval: -limit, maxval: limit, seed: seed + 2 * i + 1 }),
        ...(i === 0 && flat ? { inputShape } : {}),
      }),
    );
    fanIn = n;
  });
  return model;
}

/**
 * Loads a LayersModel from `dir` (model.json plus the weight files its manifest names) without
 * a file-system IO handler, so it works on every backend. A softmax on the output is replaced
 * by `linear`, because training and the saved model work on logits; `notes` says so.
 */
export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; notes: string[] }> {
  const invalid = (message: string) => new TrainingError('invalid_model', `base model in ${dir}: ${message}`, { param: BASE_PARAM });
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
  const output = outputLayerConfig(json.modelTopology as Record<string, unknown>);
  if (output?.activation === 'softmax') {
    output.activation = 'linear';
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
    return { model: await tf.loadLayersModel(tf.io.fromMemory(artifacts)), notes };
  } catch (err) {
    // tfjs's own messages (a malformed manifest, weights that do not match the layers) are
    // kept, but blamed on the base model rather than left as an unexplained retryable error.
    throw err instanceof TrainingError ? err : invalid((err as Error).message);
  }
}

/** The config of the layer producing the model's output, in either topology layout. */
function outputLayerConfig(topology: Record<string, unknown>): Record<string, unknown> | undefined {
  // Keras exports wrap the model in `model_config`; tfjs writes it at the top level.
  const model = (topology.model_config ?? topology) as { class_name?: string; config?: unknown };
  type LayerJson = { class_name?: string; name?: string; config?: Record<string, unknown> };
  const config = model.config as { layers?: LayerJson[]; output_layers?: unknown[][] } | LayerJson[] | undefined;
  const layers = Array.isArray(config) ? config : config?.layers;
  if (layers === undefined || layers.length === 0) return undefined;
  if (Array.isArray(config) || model.class_name === 'Sequential') return layers[layers.length - 1]?.config;
  const outputs = config?.output_layers;
  if (outputs?.length !== 1) return undefined;
  const name = outputs[0]?.[0];
  return layers.find((l) => (l.name ?? l.config?.name) === name)?.config;
}

/**
 * Throws `incompatible_model` unless the model takes one input of the dataset's feature shape
 * and returns one score per class of the dataset.
 */
export function checkCompatible(model: tf.LayersModel, data: DatasetFiles, param = BASE_PARAM): void {
  const problem = (message: string) =>
    new TrainingError('incompatible_model', `base model ${model.name} does not fit dataset ${data.id}: ${message}`, { param });
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw problem(`it has ${model.inputs.length} inputs and ${model.outputs.length} outputs; expected one of each`);
  }
  const input = model.inputs[0]!.shape.slice(1);
  const fits = input.length === data.featureShape.length && input.every((d, i) => d === null || d === data.featureShape[i]);
  if (!fits) {
    throw problem(`it takes inputs of shape [${input.map((d) => d ?? '?').join(', ')}]; expected the dataset's featureShape [${data.featureShape.join(', ')}]`);
  }
  const output = model.outputs[0]!.shape;
  if (output.length !== 2 || output[1] !== data.numClasses) {
    throw problem(`its output has shape [${output.map((d) => d ?? '?').join(', ')}]; expected [?, ${data.numClasses}] (one logit per class)`);
  }
}

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
  const tmp = `${dir}.tmp-${process.pid}`;
  const old = `${dir}.old-${process.pid}`;
  // A previous attempt of this job that crashed in this process id may have left these behind.
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const handle = await open(path.join(tmp, name), 'w');
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
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

/** Computes logits from a batch; differentiated by the training loop. */
export type Forward = (x: tf.Tensor) => tf.Tensor;

interface DenseStep {
  kernel: tf.Variable;
  bias: tf.Variable;
  activation: (x: tf.Tensor) => tf.Tensor;
}

const ACTIVATIONS: Record<string, (x: tf.Tensor) => tf.Tensor> = {
  linear: (x) => x,
  relu: (x) => tf.relu(x),
  tanh: (x) => tf.tanh(x),
  sigmoid: (x) => tf.sigmoid(x),
  elu: (x) => tf.elu(x),
  selu: (x) => tf.selu(x),
};

/**
 * The training-mode forward pass of `model`. With `explicitTranspose`, a model that is a plain
 * chain of dense layers runs through `dense()` below, whose gradients transpose explicitly;
 * any other model, or without the option, runs through `model.apply` and tfjs's own gradients.
 */
export function trainingForward(model: tf.LayersModel, explicitTranspose: boolean): Forward {
  const chain = explicitTranspose ? denseChain(model) : undefined;
  if (chain === undefined) return (x) => model.apply(x, { training: true }) as tf.Tensor;
  return (x) => {
    let h = (x.rank === 2 ? x : tf.reshape(x, [x.shape[0]!, -1])) as tf.Tensor2D;
    chain.forEach((layer, i) => {
      // The input batch needs no gradient, so the first layer skips computing it.
      h = layer.activation(dense(h, layer.kernel, layer.bias, i > 0)) as tf.Tensor2D;
    });
    return h;
  };
}

/** The dense layers of a Sequential [Flatten] Dense... model, or undefined if it is not one. */
function denseChain(model: tf.LayersModel): DenseStep[] | undefined {
  if (!(model instanceof tf.Sequential)) return undefined;
  const steps: DenseStep[] = [];
  for (const [i, layer] of model.layers.entries()) {
    const className = layer.getClassName();
    if (className === 'Flatten' && i === 0) continue;
    const config = layer.getConfig();
    const activation = ACTIVATIONS[String(config.activation)];
    if (className !== 'Dense' || activation === undefined || config.useBias === false || layer.weights.length !== 2) return undefined;
    const [kernel, bias] = layer.weights as [tf.LayerVariable, tf.LayerVariable];
    steps.push({ kernel: kernel.read() as tf.Variable, bias: bias.read() as tf.Variable, activation });
  }
  const flattensFirst = model.layers[0]?.getClassName() === 'Flatten';
  return steps.length > 0 && (flattensFirst || model.inputs[0]!.shape.length === 2) ? steps : undefined;
}

/**
 * x·W + b with gradients that transpose their operands explicitly: dW = transpose(x)·dy and
 * dx = dy·transpose(W). tfjs's own gradient instead calls matMul with transposeA/transposeB,
 * which the wasm backend runs about 7x slower than a plain product, while a transpose is cheap.
 */
export function dense(x: tf.Tensor2D, kernel: tf.Tensor2D | tf.Variable, bias: tf.Tensor1D | tf.Variable, inputGrad: boolean): tf.Tensor2D {
  const w = kernel as tf.Tensor2D;
  const b = bias as tf.Tensor1D;
  const forward = (save: tf.GradSaveFunc) => {
    save([x, w]);
    return tf.add(tf.matMul(x, w), b) as tf.Tensor2D;
  };
  const paramGrads = (dy: tf.Tensor2D, savedX: tf.Tensor2D) => [tf.matMul(tf.transpose(savedX), dy), tf.sum(dy, 0)];
  if (inputGrad) {
    return tf.customGrad((_x, _w, _b, save) => ({
      value: forward(save as tf.GradSaveFunc),
      gradFunc: (dy: tf.Tensor2D, [sx, sw]) => [tf.matMul(dy, tf.transpose(sw as tf.Tensor2D)), ...paramGrads(dy, sx as tf.Tensor2D)],
    }))(x, w, b) as tf.Tensor2D;
  }
  return tf.customGrad((_w, _b, save) => ({
    value: forward(save as tf.GradSaveFunc),
    gradFunc: (dy: tf.Tensor2D, [sx]) => paramGrads(dy, sx as tf.Tensor2D),
  }))(w, b) as tf.Tensor2D;
}
