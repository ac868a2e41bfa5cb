/**
 * Which Keras layer types a base model may have: those the training child loads, trains (with
 * gradients on every backend, tested in test/workers/training/layer-gradients.test.ts) and saves.
 * An upload is checked against this list before it is stored, so that a layer that cannot be
 * trained is refused with its class, name and place in model.json, not at a job's first step.
 * Plain JSON, no TensorFlow.js: the API checks here, the training child shares the list.
 */
import type { FieldError } from '../../field-error.js';

/** Layer classes, as Keras and tfjs name them in a topology's `class_name`. */
export const TRAINABLE_LAYERS: ReadonlySet<string> = new Set([
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'SeparableConv2D',
  'BatchNormalization',
  'ReLU',
  'ZeroPadding2D',
  'Add',
  'Concatenate',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'AveragePooling2D',
  'MaxPooling2D',
  'Dropout',
  'Flatten',
  'Reshape',
  'Activation',
  'Dense',
]);

/** Layers that hold a model of their own, whose layers are checked in turn. */
const NESTED_MODELS = new Set(['Sequential', 'Model', 'Functional']);

/** Convolutions whose gradients exist for dilation 1 only (tfjs's own and the wasm kernels alike). */
const CONVOLUTIONS = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D']);

type LayerJson = { class_name?: unknown; name?: unknown; config?: Record<string, unknown> | unknown[] };

const problem = (pointer: string, detail: string): FieldError => ({ pointer, in: 'body', detail });

/** The layer list of a model's `config` (an array in old Keras Sequential exports) and its pointer. */
function layersOf(config: unknown, at: string): { layers: unknown[]; at: string } | undefined {
  if (Array.isArray(config)) return { layers: config, at };
  const layers = (config as { layers?: unknown } | null)?.layers;
  return Array.isArray(layers) ? { layers, at: `${at}/layers` } : undefined;
}

const isOne = (v: unknown) => v === undefined || v === null || v === 1 || (Array.isArray(v) && v.every((d) => d === 1));

function checkLayers(layers: unknown[], at: string, errors: FieldError[]): void {
  layers.forEach((raw, i) => {
    const here = `${at}/${i}`;
    const layer = raw as LayerJson | null;
    if (layer === null || typeof layer !== 'object' || typeof layer.class_name !== 'string') {
      errors.push(problem(here, 'must be a layer object with a string class_name'));
      return;
    }
    const config = (layer.config ?? {}) as Record<string, unknown>;
    const name = typeof layer.name === 'string' ? layer.name : typeof config.name === 'string' ? config.name : `#${i}`;
    const what = `layer '${name}' (${layer.class_name})`;
    if (NESTED_MODELS.has(layer.class_name)) {
      const inner = layersOf(layer.config, `${here}/config`);
      if (inner) checkLayers(inner.layers, inner.at, errors);
      else errors.push(problem(`${here}/config`, `${what} is a nested model without a layer list`));
      return;
    }
    if (!TRAINABLE_LAYERS.has(layer.class_name)) {
      errors.push(problem(here, `${what} cannot be trained here; supported layer types: ${[...TRAINABLE_LAYERS].join(', ')}`));
      return;
    }
    if (CONVOLUTIONS.has(layer.class_name) && !isOne(config.dilation_rate)) {
      errors.push(problem(`${here}/config/dilation_rate`, `${what} is dilated (${JSON.stringify(config.dilation_rate)}); only dilation 1 has gradients here`));
    }
    if (config.data_format === 'channels_first') {
      errors.push(problem(`${here}/config/data_format`, `${what} is channels_first; expected channels_last (the layout TensorFlow.js trains in)`));
    }
  });
}

/**
 * Every layer of `modelTopology` (pointer `at`) that cannot be trained, by its place in the upload,
 * e.g. `/modelJson/modelTopology/model_config/config/layers/17`. A topology without a layer list
 * is left to the TensorFlow.js check, which says what it lacks.
 */
export function untrainableLayers(modelTopology: Record<string, unknown>, at: string): FieldError[] {
  const wrapped = modelTopology.model_config !== undefined;
  const model = (wrapped ? modelTopology.model_config : modelTopology) as { config?: unknown } | null;
  const list = layersOf(model?.config, `${at}${wrapped ? '/model_config' : ''}/config`);
  if (!list) return [];
  const errors: FieldError[] = [];
  checkLayers(list.layers, list.at, errors);
  return errors;
}
