/**
 * Turns quantized weights (uint8, uint16 with `scale` and `min`, or float16) into float32, as
 * tfjs's own loader does (value = q · scale + min). Uploads are stored dequantized: the training
 * child, downloads and tf.loadLayersModel then read one plain format, a trained model is float32
 * anyway, and the cost (4x the bytes of uint8 weights on disk, 14 MB for a MobileNetV2) is paid
 * once at import rather than at every load. Runs in the check child, never on the API thread.
 */
import type { WeightSpec } from './manifest.js';

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** IEEE 754 half to a JS number. */
export function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** The byte count a spec's values take once stored: float32 for dequantized floats. */
export const storedSpecBytes = (spec: WeightSpec) => spec.shape.reduce((a, b) => a * b, 1) * BYTES[spec.dtype];

/** `specs` and their `data` with every quantized weight turned into its dtype (float32 or int32), the rest copied as they are. */
export function dequantize(specs: WeightSpec[], data: Uint8Array): { specs: WeightSpec[]; data: Uint8Array } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(specs.reduce((sum, s) => sum + storedSpecBytes(s), 0));
  const outView = new DataView(out.buffer);
  let from = 0;
  let to = 0;
  const plain: WeightSpec[] = specs.map((spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const q = spec.quantization;
    if (!q) {
      const bytes = n * BYTES[spec.dtype];
      out.set(data.subarray(from, from + bytes), to);
      from += bytes;
      to += bytes;
      return spec;
    }
    const scale = Number(q.scale ?? 1);
    const min = Number(q.min ?? 0);
    const read =
      q.dtype === 'uint8'
        ? (i: number) => view.getUint8(from + i) * scale + min
        : q.dtype === 'uint16'
          ? (i: number) => view.getUint16(from + 2 * i, true) * scale + min
          : (i: number) => float16ToNumber(view.getUint16(from + 2 * i, true));
    const write =
      spec.dtype === 'int32'
        ? (i: number, v: number) => outView.setInt32(to + 4 * i, Math.round(v), true)
        : (i: number, v: number) => outView.setFloat32(to + 4 * i, v, true);
    for (let i = 0; i < n; i++) write(i, read(i));
    from += n * BYTES[q.dtype];
    to += n * 4;
    const { quantization: _, ...rest } = spec;
    return rest;
  });
  return { specs: plain, data: out };
}
