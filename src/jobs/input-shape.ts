/**
 * How a cnn reads a dataset's examples. Pure (no tfjs), so the API checks a spec by the same
 * rule the training child builds the model by.
 */

/**
 * [h, w, c] for featureShape [h, w, c], [h, w, 1] for [h, w], and [n, n, 1] for a flat [n*n]
 * (MNIST's [784] is 28x28x1); undefined when the examples are not image-like.
 */
export function cnnInputShape(featureShape: readonly number[]): [number, number, number] | undefined {
  const [a, b, c] = featureShape;
  if (featureShape.length === 3) return [a!, b!, c!];
  if (featureShape.length === 2) return [a!, b!, 1];
  if (featureShape.length !== 1) return undefined;
  const side = Math.round(Math.sqrt(a!));
  return side >= 2 && side * side === a ? [side, side, 1] : undefined;
}
