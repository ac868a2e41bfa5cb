/**
 * A new head on a base model: every layer after the feature layer is removed and a fresh head
 * (optional flatten, hidden ReLU layers with optional dropout, logits) is put on the feature
 * layer's output. The cut is made on the base's topology JSON and the result rebuilt from it, so
 * a Sequential base stays Sequential (the training loop's fast path) and a functional one keeps
 * only the layers the feature layer depends on; the kept layers then get the base's weights.
 */
import tf = require('@tensorflow/tfjs');
import type { HeadSpec } from '../../src/schemas/methods.js';
import { featureLayerOf } from './network.js';

export interface NewHead {
  units: number;
  seed: number;
  /** the layer whose output feeds the head; default the one feeding the base's output layer */
  featureLayer?: string;
  head?: HeadSpec;
}

type LayerJson = { class_name: string; name?: string; config: Record<string, unknown>; inbound_nodes?: [string, number, number, unknown][][] };
type TopologyJson = { class_name: string; config: { name?: string; layers: LayerJson[]; input_layers?: unknown[]; output_layers?: unknown[][] } };

const FEATURE_PARAM = '/strategy/featureLayer';

/**
 * `base` with its layers after the feature layer replaced by a new head; `base` is disposed.
 * Returns the new layers' names and a note for the job's log.
 */
export async function attachNewHead(base: tf.LayersModel, spec: NewHead): Promise<{ model: tf.LayersModel; newLayers: string[]; note: string }> {
  const feature = featureLayerOf(base, spec.featureLayer, FEATURE_PARAM);
  const topology = base.toJSON(null, false) as unknown as TopologyJson;
  const sequential = topology.class_name === 'Sequential';
  const layers = topology.config.layers;
  const cutName = feature.layer?.name;
  let kept: LayerJson[];
  if (sequential) {
    kept = cutName === undefined ? [] : layers.slice(0, layers.findIndex((l) => l.config.name === cutName) + 1);
  } else {
    const needed = ancestors(layers, cutName ?? base.inputs[0].sourceLayer.name);
    kept = layers.filter((l) => needed.has(l.name!));
  }
  const removed = base.layers.filter((l) => l.getClassName() !== 'InputLayer' && !kept.some((k) => k.config.name === l.name)).map((l) => l.name);
  const taken = new Set(base.layers.map((l) => l.name));
  const fresh = (name: string) => {
    let unique = name;
    for (let i = 2; taken.has(unique); i++) unique = `${name}_${i}`;
    taken.add(unique);
    return unique;
  };
  const rank = (cutName === undefined ? base.inputs[0].shape : (feature.layer!.outputShape as (number | null)[])).length;
  const head = headLayers(spec, feature.size, rank > 2, fresh);
  // Sequential: the head follows the last kept layer; a first head layer needs the input shape.
  if (sequential && kept.length === 0) head[0].config.batch_input_shape = [null, ...base.inputs[0].shape.slice(1)];
  if (!sequential) {
    let previous = cutName ?? base.inputs[0].sourceLayer.name;
    for (const layer of head) {
      layer.name = layer.config.name as string;
      layer.inbound_nodes = [[[previous, 0, 0, {}]]];
      previous = layer.name;
    }
    topology.config.output_layers = [[previous, 0, 0]];
  }
  topology.config.layers = [...kept, ...head];
  const model = await tf.models.modelFromJSON({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'] });
  try {
    for (const l of kept) {
      const name = l.config.name as string;
      if (base.getLayer(name).weights.length > 0) model.getLayer(name).setWeights(base.getLayer(name).getWeights());
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
  const metadata = base.getUserDefinedMetadata();
  if (metadata !== undefined) model.setUserDefinedMetadata(metadata);
  base.dispose();
  const newLayers = head.map((l) => l.config.name as string);
  const from = cutName === undefined ? "the model's input" : `layer '${cutName}'`;
  const note =
    `new head on ${from} (${feature.size} features): ${removed.length > 0 ? `the base model's layers ${removed.map((n) => `'${n}'`).join(', ')} were replaced by` : 'added'} ` +
    `${newLayers.map((n) => `'${n}'`).join(', ')} with ${spec.units} classes`;
  return { model, newLayers, note };
}

/** The names of `name` and every layer its output depends on, from the functional topology's inbound nodes. */
function ancestors(layers: LayerJson[], name: string): Set<string> {
  const byName = new Map(layers.map((l) => [l.name!, l]));
  const seen = new Set<string>();
  const stack = [name];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    for (const node of byName.get(next)?.inbound_nodes ?? []) for (const [from] of node) stack.push(from);
  }
  return seen;
}

/**
 * The head's layers as topology JSON: flatten (when the features are not flat), then for each
 * hidden size and the logits a dropout (when asked) and a dense layer with PyTorch's default
 * initialisation, seeded from `spec.seed`, as the service's own models are. The dropout is not
 * seeded: tfjs would draw the same mask at every step from a seed.
 */
function headLayers(spec: NewHead, features: number, flatten: boolean, fresh: (name: string) => string): LayerJson[] {
  const layers: LayerJson[] = [];
  if (flatten) layers.push({ class_name: 'Flatten', config: { name: fresh('head_flatten') } });
  const hidden = spec.head?.hidden ?? [];
  const dropout = spec.head?.dropout ?? 0;
  let fanIn = features;
  [...hidden, spec.units].forEach((units, i) => {
    const last = i === hidden.length;
    if (dropout > 0) layers.push({ class_name: 'Dropout', config: { name: fresh(`head_dropout_${i + 1}`), rate: dropout } });
    const limit = 1 / Math.sqrt(fanIn);
    const uniform = (seed: number) => ({ class_name: 'RandomUniform', config: { minval: -limit, maxval: limit, seed } });
    layers.push({
      class_name: 'Dense',
      config: {
        name: fresh(last ? 'logits' : `head_dense_${i + 1}`),
        units,
        activation: last ? 'linear' : 'relu',
        use_bias: true,
        kernel_initializer: uniform(spec.seed + 2 * i),
        bias_initializer: uniform(spec.seed + 2 * i + 1),
      },
    });
    fanIn = units;
  });
  return layers;
}
