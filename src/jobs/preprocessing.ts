/**
 * A model's input convention applied to raw example values (pixels 0-255 as stored): pure, so
 * the prediction child applies exactly the rule the training batches follow
 * (workers/training/data.ts, `input = raw * scale + offset`).
 */

/** As a model's metadata declares it (`userDefinedMetadata.tfjsAdapt.preprocessing`). */
export interface ModelPreprocessing {
  scale: number;
  offset: number;
}

/** Rewrites `values` in place into model inputs; null preprocessing leaves them as they are. */
export function applyPreprocessing(values: Float32Array, preprocessing: ModelPreprocessing | null): Float32Array {
  if (preprocessing === null) return values;
  const { scale, offset } = preprocessing;
  for (let i = 0; i < values.length; i++) values[i] = values[i] * scale + offset;
  return values;
}
