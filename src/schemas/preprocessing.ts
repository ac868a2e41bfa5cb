/**
 * The schema of a model's input convention (src/jobs/preprocessing.ts applies it) and the API's
 * check of an uploaded one. Apart from the pure part so the training child loads no TypeBox.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const Affine = Type.Object(
  {
    scale: Type.Number({ description: 'model input = stored value * scale + offset' }),
    offset: Type.Number(),
  },
  { additionalProperties: false, description: 'an affine map of stored values, the same for every channel' },
);

const Range = Type.Object(
  {
    range: Type.Array(Type.Number(), {
      minItems: 2,
      maxItems: 2,
      description: '[low, high]: pixels 0-255 mapped linearly onto it, e.g. [0, 1] or [-1, 1] (MobileNet, EfficientNet-lite, Teachable Machine)',
    }),
  },
  { additionalProperties: false },
);

const PerChannel = (description: string) => Type.Array(Type.Number(), { minItems: 1, maxItems: 4, description });

const MeanStd = Type.Object(
  {
    mean: PerChannel('per channel, in units of pixel / 255 (e.g. ImageNet [0.485, 0.456, 0.406])'),
    std: PerChannel('per channel, in units of pixel / 255 (e.g. ImageNet [0.229, 0.224, 0.225]); each above 0'),
  },
  { additionalProperties: false, description: 'model input = (pixel / 255 - mean[c]) / std[c] (torchvision, Keras "torch" mode)' },
);

export const Preprocessing = Type.Union([Affine, Range, MeanStd], {
  description:
    'How stored values become model inputs: `{scale, offset}` (input = stored * scale + offset), `{range: [0, 1] | [-1, 1]}` for 0-255 pixels, ' +
    'or `{mean, std}` per channel over pixel / 255. A base model that declares one is fed every dataset of a job by it.',
});
export type Preprocessing = Static<typeof Preprocessing>;

/**
 * What is wrong with `value` as a Preprocessing (after "<pointer> "), or undefined when it is one.
 * Beyond the schema: finite numbers, a non-zero scale, positive std, and mean and std of one length.
 */
export function preprocessingProblem(value: unknown): string | undefined {
  const expected = 'expected {scale, offset}, {range: [low, high]} such as [0, 1] or [-1, 1], or {mean: [...], std: [...]} per channel';
  if (!Value.Check(Preprocessing, value)) return `is ${JSON.stringify(value)?.slice(0, 200)}; ${expected}`;
  const numbers = Object.values(value).flat();
  if (!numbers.every(Number.isFinite)) return `holds a number that is not finite; ${expected}`;
  if ('scale' in value && value.scale === 0) return 'has scale 0, which maps every value to the offset; expected a scale other than 0';
  if ('range' in value && !(value.range[0] < value.range[1])) return `has range [${value.range.join(', ')}]; expected [low, high] with low below high`;
  if ('mean' in value) {
    if (value.mean.length !== value.std.length)
      return `has ${value.mean.length} means and ${value.std.length} standard deviations; expected one of each per channel`;
    if (value.std.some((s) => s <= 0)) return `has std [${value.std.join(', ')}]; expected every std above 0`;
  }
  return undefined;
}
