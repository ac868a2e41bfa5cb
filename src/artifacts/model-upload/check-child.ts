/**
 * A short-lived child process that dequantizes an uploaded model's weights, checks them, loads
 * the model with TensorFlow.js (cpu backend) exactly as the training child will, and reports its
 * input and output shapes, or what stops it from loading. It exists so that the API process never
 * loads TensorFlow.js, nor spends its thread on a large model's weights.
 *
 * argv[2]: a directory holding model.json and weights.bin, which it rewrites dequantized (see
 * dequantize.ts) once the model loads. Answers one message over IPC.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// required, not imported: an ES import of tfjs's CommonJS bundle makes Node scan its source for
// export names first, ~350 ms of CPU (eslint.config.js)
import tf = require('@tensorflow/tfjs');
import { dequantize } from './dequantize.js';
import type { ModelJson, WeightSpec } from './manifest.js';

export type CheckAnswer =
  | { ok: true; inputs: Array<Array<number | null>>; outputs: Array<Array<number | null>> }
  | { ok: false; code: 'not_finite'; weight: string; index: number; value: string }
  | { ok: false; code: 'invalid_topology' | 'weights_mismatch' | 'resource_exhausted'; message: string };

/** The first NaN or infinity of the float32 weights, by weight name and element index. */
function firstNonFinite(specs: WeightSpec[], data: Uint8Array): CheckAnswer | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype === 'float32') {
      for (let i = 0; i < n; i++) {
        const v = view.getFloat32(offset + 4 * i, true);
        if (!Number.isFinite(v)) return { ok: false, code: 'not_finite', weight: spec.name, index: i, value: String(v) };
      }
    }
    offset += n * (spec.dtype === 'bool' ? 1 : 4);
  }
  return undefined;
}

async function check(dir: string): Promise<CheckAnswer> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelJson;
  const { specs, data } = dequantize(json.weightsManifest[0].weights, readFileSync(join(dir, 'weights.bin')));
  const bad = firstNonFinite(specs, data);
  if (bad) return bad;
  await tf.setBackend('cpu');
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: specs as tf.io.WeightsManifestEntry[],
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      }),
    );
  } catch (err) {
    const message = (err as Error).message;
    // tfjs says "N of M weights are not set" or "has no target variable" when topology and manifest disagree
    const mismatch = /weights are not set|no target variable|Shape mismatch|expected .* weight/i.test(message);
    return { ok: false, code: mismatch ? 'weights_mismatch' : 'invalid_topology', message };
  }
  writeFileSync(join(dir, 'weights.bin'), data);
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...json, weightsManifest: [{ paths: ['weights.bin'], weights: specs }] }));
  return { ok: true, inputs: model.inputs.map((t) => t.shape), outputs: model.outputs.map((t) => t.shape) };
}

check(process.argv[2]).then(
  (answer) => process.send!(answer, () => process.exit(0)),
  (err: Error) => process.send!({ ok: false, code: 'invalid_topology', message: err.message } satisfies CheckAnswer, () => process.exit(0)),
);
