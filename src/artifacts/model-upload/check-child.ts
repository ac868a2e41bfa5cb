/**
 * A short-lived child process that loads an uploaded model with TensorFlow.js (cpu backend),
 * exactly as the training child will, and reports its input and output shapes, or what stops
 * it from loading. It exists so that the API process never loads TensorFlow.js itself.
 *
 * argv[2]: a directory holding model.json and weights.bin. Answers one message over IPC.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export type CheckAnswer =
  | { ok: true; inputs: Array<Array<number | null>>; outputs: Array<Array<number | null>> }
  | { ok: false; code: 'not_finite'; weight: string; index: number; value: string }
  | { ok: false; code: 'invalid_topology' | 'weights_mismatch' | 'resource_exhausted'; message: string };

interface Spec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string };
}

const float16Finite = (h: number) => (h & 0x7c00) !== 0x7c00;

/** The first NaN or infinity, by weight name and element index. */
function firstNonFinite(specs: Spec[], data: Buffer): CheckAnswer | undefined {
  let offset = 0;
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    if (dtype === 'float32') {
      for (let i = 0; i < n; i++) {
        const v = data.readFloatLE(offset + 4 * i);
        if (!Number.isFinite(v)) return { ok: false, code: 'not_finite', weight: spec.name, index: i, value: String(v) };
      }
    } else if (dtype === 'float16') {
      for (let i = 0; i < n; i++) {
        const bits = data.readUInt16LE(offset + 2 * i);
        if (!float16Finite(bits)) return { ok: false, code: 'not_finite', weight: spec.name, index: i, value: bits & 0x3ff ? 'NaN' : bits & 0x8000 ? '-Infinity' : 'Infinity' };
      }
    }
    offset += n * ({ float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 } as Record<string, number>)[dtype]!;
  }
  return undefined;
}

async function check(dir: string): Promise<CheckAnswer> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const data = readFileSync(join(dir, 'weights.bin'));
  const specs = json.weightsManifest[0]!.weights as Spec[];
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
  return { ok: true, inputs: model.inputs.map((t) => t.shape), outputs: model.outputs.map((t) => t.shape) };
}

check(process.argv[2]!).then(
  (answer) => process.send!(answer, () => process.exit(0)),
  (err: Error) => process.send!({ ok: false, code: 'invalid_topology', message: err.message } satisfies CheckAnswer, () => process.exit(0)),
);
