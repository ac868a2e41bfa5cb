/**
 * What a job will cost the training child, from its spec, its model's layers and its datasets'
 * shapes, before anything runs: the bytes it holds at its peak and the floating-point operations
 * it performs. Pure (no tfjs, no I/O), so the API admits jobs by the same figures the docs state.
 *
 * The model follows how the child trains (workers/training/): every tensor of a step is created
 * inside one tf.tidy, so the forward's intermediates, the backward's and the gradients all live
 * until the step ends; the optimizer's update runs after them. Per layer, the factors below count
 * the tensors of its input or output size that its forward and its gradient (network.ts) create.
 * They were checked against the peak of tf.memory().numBytes measured in a training child
 * (test/src/jobs/estimate-measured.test.ts).
 */
import type { Architecture, JobEstimate, JobSpec } from '../schemas/job.js';
import { METHOD_DEFAULTS } from '../schemas/params.js';
import { evalBatchRows, heldBytes } from './dataset-memory.js';
import { FEATURE_CACHE_MAX_BYTES, featureCacheRefusal } from './feature-cache.js';
import { cnnInputShape } from './input-shape.js';
import { trainsOnTarget } from './methods/registry.js';
import { predictionsBytesBound, type PredictionFormat } from './predictions-file.js';
import { sumsKernelGradByTaps, sumsKernelGradDirectly, windowsApart } from './step-kernels.js';
import { DOMAIN_CLASSIFIERS, SND_BLOCK_ROWS, SND_VALUES_PER_BLOCK_CELL, VALIDATOR_SAMPLE_DEFAULT } from './validators.js';

export type { JobEstimate };

const FLOAT = 4;

/** A dataset as the estimate needs it: the fields of a ready dataset record. */
export interface DatasetShape {
  numExamples: number;
  featureShape: number[];
  featureDtype: 'uint8' | 'float32';
  numClasses: number;
}

/** A stored model as the estimate needs it: its parsed model.json. */
export interface ModelDescription {
  modelTopology: unknown;
  weightsManifest?: unknown;
}

export interface EstimateInput {
  spec: JobSpec;
  /** the spec's datasets by role, as in TrainingData (`train` is data.source of a domain_adaptation job) */
  data: Partial<Record<'train' | 'validation' | 'test' | 'target' | 'targetTest' | 'sourceTest' | 'input', DatasetShape>>;
  /** predict jobs: what the file lists (the model's class names; null: its outputs' indices) */
  predictions?: { format: PredictionFormat; topK?: number; classes: string[] | null };
  /** model.base's model.json; for multi_source, that of model.bases[0] */
  base?: ModelDescription;
  /** multi_source: how many bases the child loads */
  bases?: number;
}

type Kind = 'dense' | 'conv' | 'pool' | 'batchNorm' | 'activation' | 'reshape' | 'other';

/** One layer as the estimate sees it; sizes are values per example. */
interface Layer {
  name: string;
  kind: Kind;
  input: number;
  output: number;
  trainable: number;
  /** non-trainable weights (batch-norm statistics) */
  statistics: number;
  /** multiply-adds per example in the forward */
  macs: number;
  /** conv: a linear convolution followed by a separate activation, not relu fused in */
  separateActivation?: boolean;
  /**
   * conv: how its kernel gradient runs (network.ts conv2dKernelGrad): our kernel's sums
   * (step-kernels.ts), a product with the patches it cuts (their values per example), or by
   * default a convolution of x by dy, both transposed
   */
  kernelGrad?: { kind: 'direct' } | { kind: 'patches' | 'taps'; values: number };
  /** pool: max pooling whose gradient lays its windows out in elementwise ops (they overlap or are padded; step-kernels.ts) */
  windowOps?: boolean;
  /** draws random numbers in training mode (dropout, noise): nothing before the trained layers may, for the feature cache */
  random?: boolean;
  /** functional topologies: the layers its first call takes inputs from */
  inputs?: string[];
}

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A conv layer of `kernel` [kh, kw, channels, filters] and `strides` with [oh, ow] output pixels: its kernelGrad. */
function kernelGradOf(kernel: [number, number, number, number], strides: [number, number], out: [number, number]): Pick<Layer, 'kernelGrad'> {
  const [kh, kw, channels, filters] = kernel;
  const patch = kh * kw * channels;
  if (sumsKernelGradDirectly(patch, filters)) return { kernelGrad: { kind: 'direct' } };
  // the input's padded grid and dy laid on it
  if (sumsKernelGradByTaps(strides)) return { kernelGrad: { kind: 'taps', values: (out[0] + kh - 1) * (out[1] + kw - 1) * (channels + filters) } };
  return patch < filters ? { kernelGrad: { kind: 'patches', values: out[0] * out[1] * patch } } : {};
}

/**
 * Values a layer's forward and backward keep per example, as multiples of its output and input
 * sizes: dense: matMul, bias add and activation out, their gradients, dx and a transposed x;
 * conv: the fused convolution and relu, the relu mask, dx, x and dy transposed for the kernel
 * gradient (neither when our kernel sums it; with the patches and dy as rows when it cuts them); batch norm (network.ts batchNorm): moments, centring, scaling, shift, and as many back;
 * pooling: its saved input and dx, and for max pooling through elementwise ops (windowOps) the
 * window scores and masks of its gradient, input-sized.
 */
function layerValues(l: Layer): number {
  switch (l.kind) {
    case 'dense':
      return 5 * l.output + 2 * l.input;
    case 'conv':
      return (
        (l.kernelGrad?.kind === 'direct' || l.kernelGrad?.kind === 'taps' ? 5 * l.output + l.input : 6 * l.output + 2 * l.input) +
        (l.kernelGrad?.kind === 'taps' ? l.kernelGrad.values : 0) +
        (l.separateActivation ? 3 * l.output : 0) +
        (l.kernelGrad?.kind === 'patches' ? l.kernelGrad.values + 2 * l.output : 0)
      );
    case 'batchNorm':
      return 12 * l.output;
    case 'activation':
    case 'other':
      return 3 * l.output;
    case 'pool':
      return 2 * l.output + (l.windowOps ? 8 : 2) * l.input;
    case 'reshape':
      return 0;
  }
}

/** Values per example a layer's inference-mode forward makes: its output and its temporaries. */
function inferenceValues(l: Layer): number {
  return l.kind === 'reshape' ? 0 : l.kind === 'dense' || l.kind === 'batchNorm' ? 3 * l.output : 2 * l.output;
}

/**
 * Values per example a whole model's inference (evaluation, the feature cache's batches: tfjs's
 * executor frees each layer's inputs once nothing else reads them) holds at its peak: the input,
 * the largest layer's input with what it makes, and one more tensor of the largest output held
 * across a block (a residual connection's other branch).
 */
function inferencePeak(layers: Layer[], input: number): number {
  const layer = layers.reduce((m, l) => Math.max(m, l.input + inferenceValues(l)), 0);
  return input + layer + layers.reduce((m, l) => Math.max(m, l.output), 0);
}

// ---------------------------------------------------------------------------------------------
// The layers of a job's model

/** The layers buildModel() (workers/training/models.ts) makes of an architecture. */
export function architectureLayers(a: Architecture, featureShape: number[], numClasses: number): Layer[] {
  const layers: Layer[] = [];
  let size = product(featureShape);
  if (a.kind === 'cnn') {
    const image = cnnInputShape(featureShape);
    if (image === undefined) return [];
    let [h, w, c] = image;
    const k = a.kernelSize ?? 3;
    const pooling = a.pooling ?? 'max';
    const relu = (a.activation ?? 'relu') === 'relu';
    for (const [i, f] of (a.filters ?? [16, 32]).entries()) {
      const out = h * w * f;
      const patch = k * k * c;
      layers.push({
        name: `conv_${i + 1}`,
        kind: 'conv',
        input: h * w * c,
        output: out,
        trainable: patch * f + f,
        statistics: 0,
        macs: out * patch,
        separateActivation: a.batchNorm === true || !relu,
        ...kernelGradOf([k, k, c, f], [1, 1], [h, w]),
      });
      if (a.batchNorm) {
        layers.push({ name: `conv_${i + 1}_bn`, kind: 'batchNorm', input: out, output: out, trainable: 2 * f, statistics: 2 * f, macs: 4 * out });
        layers.push({ name: `conv_${i + 1}_act`, kind: 'activation', input: out, output: out, trainable: 0, statistics: 0, macs: out });
      }
      c = f;
      if (pooling !== 'none') {
        const [ph, pw] = [Math.floor(h / 2), Math.floor(w / 2)];
        layers.push({
          name: `pool_${i + 1}`,
          kind: 'pool',
          input: h * w * c,
          output: ph * pw * c,
          trainable: 0,
          statistics: 0,
          macs: h * w * c,
        });
        [h, w] = [ph, pw];
      }
    }
    size = h * w * c;
  }
  for (const [i, units] of [...a.hidden, numClasses].entries()) {
    const last = i === a.hidden.length;
    layers.push({
      name: last ? 'logits' : `dense_${i + 1}`,
      kind: 'dense',
      input: size,
      output: units,
      trainable: size * units + units,
      statistics: 0,
      macs: size * units,
    });
    if (!last && a.batchNorm) {
      layers.push({ name: `dense_${i + 1}_bn`, kind: 'batchNorm', input: units, output: units, trainable: 2 * units, statistics: 2 * units, macs: 4 * units });
      layers.push({ name: `dense_${i + 1}_act`, kind: 'activation', input: units, output: units, trainable: 0, statistics: 0, macs: units });
    }
    size = units;
  }
  return layers;
}

type LayerJson = { class_name?: unknown; config?: Record<string, unknown> };

/** The layer list of a tfjs or Keras topology (`model_config` wraps Keras exports), or [] when it has none. */
function topologyLayers(topology: unknown): LayerJson[] {
  if (topology === null || typeof topology !== 'object') return [];
  const t = topology as Record<string, unknown>;
  const model = (t.model_config ?? t) as { config?: unknown };
  const config = model?.config as { layers?: unknown } | unknown[] | undefined;
  const layers = Array.isArray(config) ? config : config?.layers;
  return Array.isArray(layers) ? layers.filter((l): l is LayerJson => l !== null && typeof l === 'object') : [];
}

const pair = (v: unknown, fallback: number): [number, number] => {
  if (Array.isArray(v)) return [Number(v[0] ?? fallback) || fallback, Number(v[1] ?? v[0] ?? fallback) || fallback];
  const n = Number(v ?? fallback) || fallback;
  return [n, n];
};

/** Output shape of a convolution or pooling over `shape` ([h, w, ...]) with a `k` window. */
function windowed(shape: number[], k: [number, number], strides: [number, number], padding: unknown): [number, number] {
  const [h, w] = [shape[0] ?? 1, shape[1] ?? 1];
  const same = padding === 'same';
  return [
    same ? Math.ceil(h / strides[0]) : Math.max(0, Math.floor((h - k[0]) / strides[0]) + 1),
    same ? Math.ceil(w / strides[1]) : Math.max(0, Math.floor((w - k[1]) / strides[1]) + 1),
  ];
}

/** The layer names a layer of a functional topology takes its inputs from (its first call). */
function inboundNames(l: LayerJson): string[] {
  const nodes = (l as { inbound_nodes?: unknown }).inbound_nodes;
  const first: unknown = Array.isArray(nodes) ? nodes[0] : undefined;
  return Array.isArray(first) ? first.map((ref: unknown) => (Array.isArray(ref) ? String(ref[0]) : '')) : [];
}

/** ZeroPadding2D's `padding` as rows and columns added. */
function padded(padding: unknown): [number, number] {
  if (Array.isArray(padding) && Array.isArray(padding[0])) {
    const [rows, cols] = padding as [unknown[], unknown[] | undefined];
    return [Number(rows[0] ?? 0) + Number(rows[1] ?? 0), Number(cols?.[0] ?? 0) + Number(cols?.[1] ?? 0)];
  }
  const [a, b] = pair(padding, 1);
  return [2 * a, 2 * b];
}

/**
 * The layers of a stored model, in the order of its topology, with shapes inferred from the
 * dataset's `featureShape` (the model is checked to take it): a layer of a functional model
 * takes the shape of the layer its first input comes from (its `inbound_nodes`), of a
 * Sequential one the shape of the layer before. Layers of a class not listed here are counted as
 * elementwise. `newHead` gives the last Dense layer that many units, as a new head does.
 */
export function topologyLayersOf(model: ModelDescription, featureShape: number[], newHead?: number): Layer[] {
  const list = topologyLayers(model.modelTopology);
  const lastDense = list.map((l) => l.class_name).lastIndexOf('Dense');
  const shapes = new Map<string, number[]>();
  let shape = [...featureShape];
  const layers: Layer[] = [];
  for (const [i, l] of list.entries()) {
    const config = l.config ?? {};
    const name = typeof config.name === 'string' ? config.name : `layer_${i}`;
    const inShapes = inboundNames(l)
      .map((n) => shapes.get(n))
      .filter((s): s is number[] => s !== undefined);
    if (inShapes[0]) shape = inShapes[0];
    const input = product(shape);
    const last = shape[shape.length - 1] ?? 1;
    const bias = config.use_bias !== false;
    const inputs = inboundNames(l);
    const add = (kind: Kind, out: number[], trainable: number, macs: number, extra: Partial<Layer> = {}) => {
      shape = out;
      layers.push({ name, kind, input, output: product(out), trainable, statistics: 0, macs, ...(inputs.length > 0 ? { inputs } : {}), ...extra });
    };
    switch (l.class_name) {
      case 'InputLayer':
        shape = [...featureShape];
        break;
      case 'Dense': {
        const units = i === lastDense && newHead !== undefined ? newHead : Number(config.units) || 1;
        add('dense', [...shape.slice(0, -1), units], last * units + (bias ? units : 0), input * units);
        break;
      }
      case 'Conv2D': {
        const filters = Number(config.filters) || 1;
        const k = pair(config.kernel_size, 1);
        const [oh, ow] = windowed(shape, k, pair(config.strides, 1), config.padding);
        const patch = k[0] * k[1] * last;
        const trainable = patch * filters + (bias ? filters : 0);
        add('conv', [oh, ow, filters], trainable, oh * ow * filters * patch, {
          separateActivation: config.activation !== 'relu',
          ...kernelGradOf([k[0], k[1], last, filters], pair(config.strides, 1), [oh, ow]),
        });
        break;
      }
      case 'DepthwiseConv2D':
      case 'SeparableConv2D': {
        const m = Number(config.depth_multiplier) || 1;
        const k = pair(config.kernel_size, 1);
        const [oh, ow] = windowed(shape, k, pair(config.strides, 1), config.padding);
        const depthwise = k[0] * k[1] * last * m;
        const filters = l.class_name === 'SeparableConv2D' ? Number(config.filters) || 1 : 0;
        const channels = filters || last * m;
        const trainable = depthwise + filters * last * m + (bias ? channels : 0);
        add('conv', [oh, ow, channels], trainable, oh * ow * (last * m * k[0] * k[1] + filters * last * m), { separateActivation: true });
        break;
      }
      case 'ZeroPadding2D': {
        const [ph, pw] = padded(config.padding);
        add('other', [(shape[0] ?? 1) + ph, (shape[1] ?? 1) + pw, last], 0, 0);
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const [size, strides] = [pair(config.pool_size, 2), pair(config.strides ?? config.pool_size, 2)];
        const [oh, ow] = windowed(shape, size, strides, config.padding);
        add('pool', [oh, ow, shape[2] ?? 1], 0, input, {
          windowOps: l.class_name === 'MaxPooling2D' && !windowsApart(size, strides, config.padding !== 'valid'),
        });
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D':
        add('pool', [last], 0, input);
        break;
      case 'Concatenate':
        add('other', [...shape.slice(0, -1), inShapes.reduce((sum, s) => sum + (s[s.length - 1] ?? 0), 0) || last], 0, 0);
        break;
      case 'ReLU':
      case 'Activation':
        add('activation', shape, 0, input);
        break;
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
      case 'AlphaDropout':
        add('activation', shape, 0, input, { random: true });
        break;
      case 'Flatten':
        add('reshape', [input], 0, 0);
        break;
      case 'Reshape': {
        const target = Array.isArray(config.target_shape) ? config.target_shape.map((d) => Number(d) || 1) : [input];
        add('reshape', target, 0, 0);
        break;
      }
      case 'BatchNormalization':
        add('batchNorm', shape, 2 * last, 4 * input, { statistics: 2 * last });
        break;
      default:
        add('other', shape, 0, input);
    }
    shapes.set(name, shape);
  }
  return layers;
}

/** Weights listed in a model.json's manifest: a floor for models whose layers are not all known here. */
function manifestWeights(model: ModelDescription): number {
  if (!Array.isArray(model.weightsManifest)) return 0;
  let n = 0;
  for (const group of model.weightsManifest as { weights?: unknown }[]) {
    for (const w of Array.isArray(group?.weights) ? (group.weights as { shape?: unknown }[]) : []) {
      if (Array.isArray(w?.shape)) n += product(w.shape.map((d) => Number(d) || 0));
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// The estimate

/**
 * Optimizer slots per trained weight, and the weight-sized temporaries of its update: tfjs's
 * optimizers update every variable inside one tidy, so each op's result for each variable
 * (Adam: two moments, their bias corrections, the step) lives until the update ends.
 */
function optimizerCost(spec: JobSpec): { slots: number; update: number } {
  const o = spec.hyperparameters?.optimizer;
  if (o === undefined) return { slots: 0, update: 0 };
  switch (o.name) {
    case 'sgd':
      return o.momentum !== undefined && o.momentum > 0 ? { slots: 1, update: 5 } : { slots: 0, update: 2 };
    case 'momentum':
      return { slots: 1, update: 5 + (o.nesterov ? 3 : 0) };
    case 'adam':
      return { slots: 2, update: 14 };
    case 'rmsprop':
      return { slots: 1 + ((o.momentum ?? 0) > 0 ? 1 : 0) + (o.centered ? 1 : 0), update: 10 + (o.centered ? 4 : 0) };
  }
}

/**
 * Bytes of the host-side batch buffers (data.ts Batcher): float32 examples, labels, one-hot rows,
 * the order, and one example as read and augmented (stored bytes and float32).
 */
function batcherBytes(d: DatasetShape, rows: number): number {
  const r = Math.min(rows, d.numExamples);
  const size = product(d.featureShape);
  return r * (size + 1 + d.numClasses) * FLOAT + d.numExamples * 4 + size * (FLOAT + 1);
}

export function estimateJob(input: EstimateInput): JobEstimate {
  const { spec, data } = input;
  const hp = spec.hyperparameters;
  const train = data.train ?? data.test ?? data.input;
  if (train === undefined) throw new Error("estimateJob needs the job's labelled set (data.train, data.source or data.test) or data.input");
  const numClasses = train.numClasses;
  const newHead = spec.strategy?.newHead ? numClasses : undefined;
  const featureLayer = newHead === undefined ? undefined : spec.strategy?.featureLayer;
  const layers = spec.model.architecture
    ? architectureLayers(spec.model.architecture, train.featureShape, numClasses)
    : input.base
      ? featureLayer === undefined
        ? topologyLayersOf(input.base, train.featureShape, newHead)
        : headOnFeatureLayer(topologyLayersOf(input.base, train.featureShape), featureLayer, spec, numClasses)
      : [];
  const layerWeights = layers.reduce((n, l) => n + l.trainable + l.statistics, 0);
  const parameters = Math.max(layerWeights, input.base && !newHead ? manifestWeights(input.base) : 0);
  const evalModel = { largestLayerOutput: layers.reduce((m, l) => Math.max(m, l.output), 0) };
  const evalRows = Math.max(...Object.values(data).map((d) => evalBatchRows(d, evalModel)));
  const evalValues = inferencePeak(layers, product(train.featureShape));
  const evalBytes = evalRows * evalValues * FLOAT;
  const macs = layers.reduce((n, l) => n + l.macs, 0);
  // uint8 pixels are held as bytes, and large sets not at all (read per batch): dataset-memory.ts
  const allData = Object.values(data).reduce((n, d) => n + heldBytes(d), 0);

  if (spec.type === 'evaluate' || spec.type === 'predict' || hp === undefined) {
    const test = data.test ?? train;
    const held = allData + batcherBytes(test, evalBatchRows(test, evalModel));
    const flops = 2 * macs * test.numExamples;
    const output = input.predictions && predictionsBound(input.predictions, test.numExamples, layers);
    return summary({
      ...(output !== undefined ? { outputBytes: output } : {}),
      parameters,
      parameterBytes: parameters * FLOAT,
      optimizerStateBytes: 0,
      activationBytes: evalBytes,
      datasetBytes: held,
      stepsPerEpoch: 0,
      flopsPerEpoch: flops,
      flops,
    });
  }

  const B = hp.batchSize;
  const kind = spec.method?.kind;
  const target = data.target;
  const usesTarget = trainsOnTarget(spec) && target !== undefined;
  const targetRows = usesTarget ? Math.min(B, target.numExamples) : 0;
  const rows = Math.min(B, train.numExamples) + targetRows;

  // Trained weights: every trainable one, or those of the trained part under a freeze strategy.
  const part = frozenPart(spec, layers, { train, evalRows, sequential: input.base === undefined || isSequential(input.base) });
  const trainableAll = Math.max(
    layers.reduce((n, l) => n + l.trainable, 0),
    parameters - layers.reduce((n, l) => n + l.statistics, 0),
  );
  let trained = trainableAll - part.frozen.reduce((n, l) => n + l.trainable, 0);
  const live = layers.slice(part.frozen.length);

  // The method's own weights, copies and extra per-step values.
  const named = spec.method?.featureLayer === undefined ? undefined : layers.find((l) => l.name === spec.method?.featureLayer);
  const featureSize = named?.output ?? featureSizeOf(layers, train.featureShape);
  let held = parameters;
  let stepValues = 0;
  let stepFlops = 0;
  if (kind === 'dann') {
    const h = spec.method?.hiddenUnits ?? METHOD_DEFAULTS.hiddenUnits;
    const head = featureSize * h + 2 * h + 1;
    held += head;
    trained += head;
    stepValues += rows * (4 * featureSize + 7 * h + 6);
    stepFlops += 6 * rows * (featureSize * h + h);
  } else if (kind === 'mmd') {
    const k = spec.method?.kernels ?? METHOD_DEFAULTS.kernels;
    // per kernel: the scaled distances, their negation and exponential, and as many on the way back
    stepValues += rows * 4 * featureSize + rows * rows * (10 + 9 * k);
    stepFlops += 6 * rows * rows * featureSize + 3 * rows * rows * (6 + 3 * k);
  } else if (kind === 'coral') {
    stepValues += 8 * rows * featureSize + 8 * featureSize * featureSize;
    stepFlops += 6 * rows * featureSize * featureSize;
  } else if (kind === 'pseudo_label') {
    stepValues += 10 * targetRows * numClasses;
  }
  if (spec.strategy?.kind === 'l2sp' || kind === 'multi_source') {
    held += trained;
    stepValues += 4 * trained;
  }
  const bases = kind === 'multi_source' ? (input.bases ?? spec.model.bases?.length ?? 1) : 1;

  const { slots, update } = optimizerCost(spec);
  const inputValues = product(train.featureShape) * (usesTarget ? 2 * rows : rows);
  // What a step keeps of the frozen part (see frozenPart): its outputs only, or its inference values too.
  const frozenValues = part.cached ? rows * part.boundary : rows * (part.keptPerExample + part.boundary) + (part.frozen.length > 0 ? inputValues : 0);
  const forwardBackward = rows * live.reduce((n, l) => n + layerValues(l), 0) + (part.frozen.length > 0 ? frozenValues : inputValues) + stepValues;
  // Gradients and the kernels transposed for dx live alongside the backward's values.
  const stepPeak = (forwardBackward + 2 * trained) * FLOAT;
  const updatePeak = (trained + update * trained) * FLOAT;
  const validators =
    spec.type === 'domain_adaptation' && target !== undefined
      ? validatorCost({
          sample: hp.validatorSample ?? VALIDATOR_SAMPLE_DEFAULT,
          target,
          source: train,
          validation: data.validation,
          featureSize,
          numClasses,
          macs,
        })
      : { flops: 0, bytes: 0 };
  // the validators run after the epoch's steps, their tensors freed: a peak beside theirs, not on top
  const activationBytes = Math.max(stepPeak, updatePeak, evalBytes, part.passBytes, validators.bytes);
  // multi_source loads every base and a copy of its weights before averaging them into one.
  const loadBytes = bases > 1 ? 2 * bases * parameters * FLOAT : 0;

  const steps = Math.ceil(train.numExamples / B);
  // the frozen part runs forward only: at every step, or once per example when its outputs are cached
  const frozenMacs = part.frozen.reduce((n, l) => n + l.macs, 0);
  const trainFlops = 6 * (macs - frozenMacs) * steps * rows + (part.cached ? 0 : 2 * frozenMacs * steps * rows) + steps * stepFlops;
  const cacheFlops = part.cached ? 2 * frozenMacs * train.numExamples : 0;
  const validationFlops = data.validation ? 2 * macs * data.validation.numExamples : 0;
  const flopsPerEpoch = trainFlops + validationFlops + validators.flops;
  const finalSets = [
    data.test,
    data.targetTest,
    data.sourceTest ?? (spec.type === 'domain_adaptation' ? train : undefined),
    kind === 'adabn' ? target : undefined,
  ];
  const finalFlops = finalSets.reduce((n, d) => n + (d ? 2 * macs * d.numExamples : 0), 0);
  const batchBytes = batcherBytes(train, B) + (usesTarget ? batcherBytes(target, B) : 0) + batcherBytes(train, evalRows);
  const estimate = summary({
    parameters,
    parameterBytes: Math.max(held * FLOAT, loadBytes),
    optimizerStateBytes: slots * trained * FLOAT,
    activationBytes,
    datasetBytes: allData + batchBytes + (part.cached ? train.numExamples * part.boundary * FLOAT : 0),
    stepsPerEpoch: steps,
    flopsPerEpoch,
    flops: hp.epochs * flopsPerEpoch + finalFlops + cacheFlops,
  });
  return estimate;
}

/** The most bytes a predict job's file can take: every row with the longest class names (predictions-file.ts). */
function predictionsBound(p: NonNullable<EstimateInput['predictions']>, rows: number, layers: Layer[]): number {
  const classes = p.classes ?? Array.from({ length: layers[layers.length - 1]?.output ?? 1 }, (_, c) => String(c));
  return predictionsBytesBound({ format: p.format, rows, topK: Math.min(p.topK ?? classes.length, classes.length), classes });
}

/** Whether a stored model is a Sequential one (trained layer by layer) rather than a functional graph. */
function isSequential(model: ModelDescription): boolean {
  const t = model.modelTopology as { class_name?: unknown; model_config?: { class_name?: unknown } } | null;
  return (t?.model_config?.class_name ?? t?.class_name) === 'Sequential';
}

/**
 * `layers` up to `featureLayer` and then the new head a job puts there (workers/training/new-head.ts):
 * for each hidden size and the logits, a dropout when asked and a dense layer.
 */
function headOnFeatureLayer(layers: Layer[], featureLayer: string, spec: JobSpec, numClasses: number): Layer[] {
  const at = layers.findIndex((l) => l.name === featureLayer);
  if (at < 0) return layers;
  const kept = layers.slice(0, at + 1);
  let size = kept[at].output;
  const dropout = (spec.strategy?.head?.dropout ?? 0) > 0;
  for (const [i, units] of [...(spec.strategy?.head?.hidden ?? []), numClasses].entries()) {
    if (dropout)
      kept.push({ name: `head_dropout_${i + 1}`, kind: 'activation', input: size, output: size, trainable: 0, statistics: 0, macs: size, random: true });
    kept.push({ name: `head_dense_${i + 1}`, kind: 'dense', input: size, output: units, trainable: size * units + units, statistics: 0, macs: size * units });
    size = units;
  }
  return kept;
}

interface FrozenPart {
  /** the layers before the first trained one (none unless the strategy is freeze) */
  frozen: Layer[];
  /** values per example of the frozen part's output, which the trained part reads */
  boundary: number;
  /** whether its outputs are computed once and kept (the feature cache), as far as the spec and the layers tell */
  cached: boolean;
  /** values per example a step keeps of the frozen part besides its output (a Sequential model's tape keeps them; a functional one's do not) */
  keptPerExample: number;
  /** the peak of running the frozen part alone: the cache's inference batches, or its own tidy at every step */
  passBytes: number;
}

/**
 * The frozen part of a freeze strategy as the training child runs it. It runs in inference mode and
 * no gradient flows into it, so its layers cost their inference values (inferenceValues), never the
 * six-fold training ones. With the feature cache (src/jobs/feature-cache.ts: no augmentation, no
 * dropout before the cut) it runs once per example in evaluation batches before the first step, and
 * the steps read its outputs. Without, a functional model runs it in a tidy of its own at every step
 * that keeps only its outputs (workers/training/functional-forward.ts), while a Sequential model's
 * step keeps every frozen layer's output until it ends.
 */
function frozenPart(spec: JobSpec, layers: Layer[], o: { train: DatasetShape; evalRows: number; sequential: boolean }): FrozenPart {
  const none = { frozen: [], boundary: 0, cached: false, keptPerExample: 0, passBytes: 0 };
  if (spec.strategy?.kind !== 'freeze') return none;
  const weighted = layers.flatMap((l, i) => (l.trainable > 0 ? [i] : []));
  const from = spec.strategy.trainFrom === undefined ? -1 : layers.findIndex((l) => l.name === spec.strategy?.trainFrom);
  const newLayers = spec.strategy.newHead ? (spec.strategy.head?.hidden?.length ?? 0) + 1 : METHOD_DEFAULTS.trainableLayers;
  const count = spec.strategy.trainableLayers ?? newLayers;
  const first = from >= 0 ? from : (weighted[Math.max(0, weighted.length - count)] ?? 0);
  if (first <= 0) return none;
  const frozen = layers.slice(0, first);
  // a dropout or flatten in front of the trained layers belongs to them: the cut goes before either
  let cut = frozen.length;
  while (cut > 0 && (frozen[cut - 1].random || frozen[cut - 1].kind === 'reshape')) cut--;
  // the cache's rules (workers/training/feature-cache.ts) as far as the layer list shows them: the
  // trained layers read only the cut's output (or their own), and the whole set's outputs fit
  const trainedNames = new Set(layers.slice(first).map((l) => l.name));
  const readsOnlyCut = layers.slice(first).every((l) => (l.inputs ?? []).every((name) => name === layers[first - 1].name || trainedNames.has(name)));
  const cached =
    featureCacheRefusal(spec) === undefined &&
    cut > 0 &&
    !frozen.slice(0, cut).some((l) => l.random) &&
    readsOnlyCut &&
    o.train.numExamples * layers[first].input * FLOAT <= FEATURE_CACHE_MAX_BYTES;
  const inference = frozen.reduce((n, l) => n + inferenceValues(l), 0);
  const input = product(o.train.featureShape);
  const rows = cached ? Math.min(o.evalRows, o.train.numExamples) : Math.min(spec.hyperparameters?.batchSize ?? 1, o.train.numExamples);
  const alone = cached || !o.sequential;
  return {
    frozen,
    boundary: layers[first].input,
    cached,
    keptPerExample: alone ? 0 : inference,
    // the cache's batches go through the model's own inference (which frees what it no longer needs); a step's tidy keeps all
    passBytes: cached ? rows * inferencePeak(frozen, input) * FLOAT : alone ? rows * (input + inference) * FLOAT : 0,
  };
}

/**
 * The label-free validators' work at each epoch's end of a domain-adaptation job with a target
 * (workers/training/validators.ts): inference over fixed samples of the target (twice: MixVal's
 * mixed pairs too) and, with data.validation, of the source and data.validation; SND's
 * similarities of the target sample with itself; and with data.validation the domain classifiers
 * of dev and errorBound on the samples' features (DOMAIN_CLASSIFIERS).
 */
function validatorCost(v: {
  sample: number;
  target: DatasetShape;
  source: DatasetShape;
  validation: DatasetShape | undefined;
  featureSize: number;
  numClasses: number;
  macs: number;
}): { flops: number; bytes: number } {
  const nt = Math.min(v.sample, v.target.numExamples);
  const [ns, nv] = v.validation ? [Math.min(v.sample, v.source.numExamples), Math.min(v.sample, v.validation.numExamples)] : [0, 0];
  const passes = 2 * v.macs * (2 * nt + ns + nv);
  // each sample's features, logits and probabilities, held until the epoch's validators are done
  const outputs = (nt + ns + nv) * (v.featureSize + 2 * v.numClasses);
  // SND: an nt x nt product over the classes, computed a block of rows at a time
  const snd = { flops: 2 * nt * nt * v.numClasses + 20 * nt * nt, values: SND_VALUES_PER_BLOCK_CELL * Math.min(nt, SND_BLOCK_ROWS) * nt };
  const { decays, hidden, steps, linearFolds } = DOMAIN_CLASSIFIERS;
  const rows = ns + nt;
  // full-batch steps on 4 folds of 5: forward and back, three products of each layer's size per row;
  // dev's classifier on one split, the linear probe's on every fold
  const trainRows = (rows * (linearFolds - 1)) / linearFolds;
  const classifiers = v.validation ? decays.length * steps * 6 * trainRows * (v.featureSize * hidden + hidden + linearFolds * v.featureSize) : 0;
  // the features, standardised, and one fold's copy of them; dev's hidden layer at a step
  const classifierValues = v.validation ? 3 * rows * v.featureSize + 4 * rows * hidden : 0;
  return { flops: passes + snd.flops + classifiers, bytes: (outputs + Math.max(snd.values, classifierValues)) * FLOAT };
}

/** Values per example of the layer feeding the head (the last layer with weights): what DANN, CORAL and MMD align by default. */
function featureSizeOf(layers: Layer[], featureShape: number[]): number {
  let head = layers.length - 1;
  while (head > 0 && layers[head].trainable === 0) head--;
  return head > 0 ? layers[head - 1].output : product(featureShape);
}

function summary(e: Omit<JobEstimate, 'memoryBytes'>): JobEstimate {
  const round = (n: number) => Math.ceil(n);
  const memoryBytes = e.parameterBytes + e.optimizerStateBytes + e.activationBytes + e.datasetBytes;
  return {
    parameters: round(e.parameters),
    parameterBytes: round(e.parameterBytes),
    optimizerStateBytes: round(e.optimizerStateBytes),
    activationBytes: round(e.activationBytes),
    datasetBytes: round(e.datasetBytes),
    memoryBytes: round(memoryBytes),
    stepsPerEpoch: e.stepsPerEpoch,
    flopsPerEpoch: round(e.flopsPerEpoch),
    flops: round(e.flops),
    ...(e.outputBytes !== undefined ? { outputBytes: e.outputBytes } : {}),
  };
}
