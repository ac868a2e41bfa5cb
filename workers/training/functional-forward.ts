/**
 * The training-mode forward of a functional (non-Sequential) model, layer by layer over its
 * graph, in two parts: the frozen region (layers none of whose weights are trained and whose
 * inputs come only from such layers: a frozen base) runs in inference mode inside its own tidy,
 * which keeps only the tensors the rest reads; the live region runs in training mode (its frozen
 * layers in inference mode too) where the gradient tape sees it. A frozen MobileNetV2 at 224x224
 * keeps some 20 million activations per example until a step ends when applied whole; this way a
 * step holds the base's outputs and the head's activations only. The frozen region's ops are
 * still recorded by the tape, but no trained variable leads to them, so the backward never reads
 * the tensors the tidy released.
 */
import * as tf from '@tensorflow/tfjs';
import type { FeatureLayer, Forward } from './forward.js';

interface Step {
  layer: tf.layers.Layer;
  inputs: number[];
  outputs: number[];
}

/**
 * The forward, or undefined when the graph is not one this walks (a layer called more than once
 * in the model, as shared layers are): the caller then applies the model whole.
 */
export function functionalForward(model: tf.LayersModel, trains: (layer: tf.layers.Layer) => boolean, feature: FeatureLayer): Forward | undefined {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (model.inputs.length !== 1 || model.outputs.length !== 1 || layers.some((l) => l.inboundNodes.length !== 1)) return undefined;
  const steps: Step[] = layers.map((layer) => {
    const node = layer.inboundNodes[0];
    return { layer, inputs: node.inputTensors.map((t) => t.id), outputs: node.outputTensors.map((t) => t.id) };
  });
  const live = new Set<number>();
  const liveSteps: Step[] = [];
  const frozenSteps: Step[] = [];
  for (const step of steps) {
    if (trains(step.layer) || step.inputs.some((id) => live.has(id))) {
      step.outputs.forEach((id) => live.add(id));
      liveSteps.push(step);
    } else frozenSteps.push(step);
  }
  const inputId = model.inputs[0].id;
  const featureId = (feature.layer?.output as tf.SymbolicTensor | undefined)?.id ?? inputId;
  const outputId = model.outputs[0].id;
  // what the live region (and the result) reads of the frozen one
  const boundary = [...new Set([...liveSteps.flatMap((s) => s.inputs), featureId, outputId])].filter((id) => !live.has(id) && id !== inputId);
  const run = (list: Step[], values: Map<number, tf.Tensor>, training: boolean) => {
    for (const { layer, inputs, outputs } of list) {
      const args = inputs.map((id) => values.get(id)!);
      const out = layer.apply(args.length === 1 ? args[0] : args, { training });
      (Array.isArray(out) ? out : [out]).forEach((t, i) => values.set(outputs[i], t as tf.Tensor));
    }
  };
  const apply = (x: tf.Tensor) => {
    const frozen = tf.tidy(() => {
      const values = new Map<number, tf.Tensor>([[inputId, x]]);
      run(frozenSteps, values, false);
      return boundary.map((id) => values.get(id)!);
    });
    const values = new Map<number, tf.Tensor>([[inputId, x], ...boundary.map((id, i) => [id, frozen[i]] as const)]);
    run(liveSteps, values, true);
    const features = values.get(featureId)!;
    return {
      logits: values.get(outputId)! as tf.Tensor2D,
      features: (features.rank === 2 ? features : tf.reshape(features, [features.shape[0], -1])) as tf.Tensor2D,
    };
  };
  return Object.assign(apply, { takesColumns: () => false });
}
