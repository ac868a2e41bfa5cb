/**
 * An uploaded image as a model's raw example: decoded with sharp, stretched to the model's
 * height and width (as image datasets are ingested), greyscale or RGB as its channels say,
 * pixels 0-255 in height x width x channel order. The model's own preprocessing is applied in
 * the prediction child, to images and JSON examples alike.
 */
import { cnnInputShape } from '../jobs/input-shape.js';

/** The image size a model with this input shape takes, or why it takes no images. */
export function imageInput(inputShape: readonly number[]): { height: number; width: number; channels: 1 | 3 } | { refused: string } {
  const image = cnnInputShape(inputShape);
  if (image === undefined)
    return { refused: `the model takes examples of shape [${inputShape.join(', ')}], which are not images; send them as JSON {"examples": [...]}` };
  const [height, width, channels] = image;
  if (channels !== 1 && channels !== 3)
    return { refused: `the model takes images of ${channels} channels; an uploaded image decodes to 1 (greyscale) or 3 (RGB)` };
  return { height, width, channels };
}

export class ImageDecodeError extends Error {}

/** Raw pixels of `bytes` at the model's size; `maxPixels` bounds what a small file may declare. */
export async function imagePixels(bytes: Buffer, input: { height: number; width: number; channels: 1 | 3 }, maxPixels: number): Promise<Float32Array> {
  // imported on the first image: sharp (libvips) costs a process about 0.2 s of CPU to load
  const { default: sharp } = await import('sharp');
  try {
    let image = sharp(bytes, { failOn: 'warning', limitInputPixels: maxPixels })
      .resize(input.width, input.height, { fit: 'fill' })
      .flatten({ background: '#000000' });
    image = input.channels === 1 ? image.greyscale() : image.toColourspace('srgb');
    const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== input.channels) throw new Error(`decoded to ${info.channels} channels`);
    return Float32Array.from(data);
  } catch (err) {
    throw new ImageDecodeError(`cannot be decoded as an image (${(err as Error).message.split('\n')[0]}); expected a PNG, JPEG, WebP or GIF`);
  }
}
