/**
 * The training-mode forward of a functional (non-Sequential) model: one walk over its graph,
 * node by node, from the model's input or, with a cut, from the output of the layer before the
 * trained ones (a feature cache feeds it then; the nodes that need anything before the cut are
 * not run). Each layer runs in its own mode: tfjs's own execution gives every layer the same
 * `training` flag, which would let a frozen batch-norm layer normalise by the batch and move its
 * statistics. The walk has two parts: the frozen region (nodes of layers none of whose weights
 * are trained and whose inputs come only from such nodes: a frozen base) runs in inference mode
 * inside its own tidy, which keeps only the tensors the rest reads; the live region runs where the
 * gradient tape sees it. A frozen MobileNetV2 at 224x224 keeps some 20 million activations per
 * example until a step ends when applied whole; this way a step holds the base's outputs and the
 * head's activations only. The frozen region's ops are still recorded by the tape, but no trained
 * variable leads to them, so the backward never reads the tensors the tidy released.
 */
import tf = require('@tensorflow/tfjs');
import { flatRows, type FeatureLayer, type Forward, type ForwardResult } from './forward.js';

export interface GraphForwardOptions {
  /** whether the step trains any of a layer's weights */
  trains: (layer: tf.layers.Layer) => boolean;
  feature: FeatureLayer;
  /**
   * Start after this layer, from its outputs instead of the model's input. Every trained layer
   * must come after it; `features` are its output when the feature layer is at or before it.
   */
  cut?: tf.layers.Layer;
}

/** One call of a layer in the graph: the symbolic tensors it reads and writes, by id. */
interface Step {
  layer: tf.layers.Layer;
  inputs: number[];
  outputs: number[];
}

export function graphForward(model: tf.LayersModel, opts: GraphForwardOptions): Forward {
  const startId = ((opts.cut?.output as tf.SymbolicTensor | undefined) ?? model.inputs[0]).id;
  const featureId = ((opts.feature.layer?.output as tf.SymbolicTensor | undefined) ?? model.inputs[0]).id;
  const outputId = model.outputs[0].id;
  const steps = order(model, startId);
  if (!steps.some((s) => s.outputs.includes(outputId))) {
    throw new Error(`model ${model.name}'s output cannot be computed from ${opts.cut ? `layer '${opts.cut.name}'` : 'its input'} alone`);
  }
  const live = new Set<number>();
  const liveSteps: Step[] = [];
  const frozenSteps: Step[] = [];
  for (const step of steps) {
    if (opts.trains(step.layer) || step.inputs.some((id) => live.has(id))) {
      step.outputs.forEach((id) => live.add(id));
      liveSteps.push(step);
    } else frozenSteps.push(step);
  }
  // what the live region (and the result) reads of the frozen one
  const frozenOut = new Set(frozenSteps.flatMap((s) => s.outputs));
  const boundary = [...new Set([...liveSteps.flatMap((s) => s.inputs), featureId, outputId])].filter((id) => frozenOut.has(id));
  // A layer without weights (dropout, noise) runs in training mode wherever it is live.
  const training = (layer: tf.layers.Layer) => layer.weights.length === 0 || opts.trains(layer);
  const run = (list: Step[], values: Map<number, tf.Tensor>, mode: (layer: tf.layers.Layer) => boolean) => {
    for (const { layer, inputs, outputs } of list) {
      const args = inputs.map((id) => values.get(id)!);
      const out = layer.apply(args.length === 1 ? args[0] : args, { training: mode(layer) }) as tf.Tensor | tf.Tensor[];
      (Array.isArray(out) ? out : [out]).forEach((t, i) => values.set(outputs[i], t));
    }
  };
  return (x: tf.Tensor): ForwardResult => {
    const frozen = tf.tidy(() => {
      const values = new Map<number, tf.Tensor>([[startId, x]]);
      run(frozenSteps, values, () => false);
      return boundary.map((id) => values.get(id)!);
    });
    const values = new Map<number, tf.Tensor>([[startId, x], ...boundary.map((id, i) => [id, frozen[i]] as const)]);
    run(liveSteps, values, training);
    return { logits: values.get(outputId)! as tf.Tensor2D, features: flatRows(values.get(featureId) ?? x) };
  };
}

/**
 * The calls of the model's layers that follow from `startId` alone, each after the calls whose
 * outputs it reads: the model's layer order, repeated while a call of a shared layer waits for a
 * later layer. Calls of a layer in another graph (whose inputs never appear here) are left out.
 */
function order(model: tf.LayersModel, startId: number): Step[] {
  const pending: Step[] = model.layers
    .filter((l) => l.getClassName() !== 'InputLayer')
    .flatMap((layer) => layer.inboundNodes.map((node) => ({ layer, inputs: node.inputTensors.map((t) => t.id), outputs: node.outputTensors.map((t) => t.id) })))
    .filter((s) => s.inputs.length > 0 && !s.outputs.includes(startId));
  const known = new Set([startId]);
  const placed = new Set<Step>();
  const steps: Step[] = [];
  for (let added = true; added;) {
    added = false;
    for (const step of pending) {
      if (placed.has(step) || !step.inputs.every((id) => known.has(id))) continue;
      placed.add(step);
      steps.push(step);
      step.outputs.forEach((id) => known.add(id));
      added = true;
    }
  }
  return steps;
}
