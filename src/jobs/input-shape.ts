/**
 * How a model reads a dataset's examples: the cnn's input shape, and the shape a dataset is fed
 * to a base model in. Pure (no tfjs), so the API checks a spec by the same rule the training
 * child builds the model by.
 */
import { imageShapeOf } from '../artifacts/image-shape.js';

/**
 * [h, w, c] for featureShape [h, w, c], [h, w, 1] for [h, w], and [n, n, 1] for a flat [n*n]
 * (MNIST's [784] is 28x28x1); undefined when the examples are not image-like.
 */
export function cnnInputShape(featureShape: readonly number[]): [number, number, number] | undefined {
  const [a, b, c] = featureShape;
  if (featureShape.length === 3) return [a, b, c];
  if (featureShape.length === 2) return [a, b, 1];
  if (featureShape.length !== 1) return undefined;
  const side = Math.round(Math.sqrt(a));
  return side >= 2 && side * side === a ? [side, side, 1] : undefined;
}

/** A dataset as the feeding rule sees it: its stored shape and, for images, [h, w, c]. */
export interface Examples {
  id: string;
  featureShape: number[];
  imageShape: number[] | null;
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const shown = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * The shape a dataset's examples are fed to a model that takes `modelInput` (null: any). Stored
 * examples are channels-last values in one order whatever the dataset's `layout`, so a dataset
 * whose image is the model's ([h, w, c], or its flat [h*w*c]) is fed in the model's shape: a 224x224
 * photo archive stored flat fits a [224, 224, 3] network. Anything else is a real mismatch,
 * answered with both shapes and the way out.
 */
export function feedShape(d: Examples, modelInput: readonly number[] | null): { shape: number[] } | { problem: string } {
  if (modelInput === null || same(modelInput, d.featureShape)) return { shape: d.featureShape };
  const image = imageShapeOf(d, true);
  const size = d.featureShape.reduce((a, b) => a * b, 1);
  const wanted = modelInput.reduce((a, b) => a * b, 1);
  if (
    image &&
    (same(modelInput, image) ||
      (modelInput.length === 1 && wanted === size) ||
      (modelInput.length === 2 && image[2] === 1 && same(modelInput, image.slice(0, 2))))
  ) {
    return { shape: [...modelInput] };
  }
  const what = `takes inputs of shape ${shown(modelInput)}; dataset ${d.id} has examples of shape ${shown(d.featureShape)}${image && !same(image, d.featureShape) ? ` (images ${shown(image)})` : ''}`;
  const wantedImage = modelInput.length === 3 ? modelInput : undefined;
  if (wantedImage && image) {
    const [h, w, c] = wantedImage as [number, number, number];
    const ways: string[] = [];
    if (image[0] !== h || image[1] !== w) ways.push(`imageSize [${h}, ${w}] (with resize "cover" or "contain" to keep the aspect ratio)`);
    if (image[2] !== c) ways.push(`channels ${c}${c === 3 ? ' (greyscale images become 3 equal channels)' : ''}`);
    return { problem: `${what}; expected ${shown(wantedImage)} images: upload the images again with ${ways.join(' and ')}` };
  }
  if (wantedImage)
    return {
      problem: `${what}; expected ${wanted} values per example as ${shown(wantedImage)} images: upload them as images, or give imageShape ${shown(wantedImage)} to a CSV or JSONL upload`,
    };
  return { problem: `${what}; expected ${wanted} values per example` };
}
