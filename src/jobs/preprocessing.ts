/**
 * A model's input convention: how stored example values become the numbers a network takes.
 * Datasets carry one (`{scale, offset}`, set at upload), and a base model may declare its own
 * (`userDefinedMetadata.tfjsAdapt.preprocessing` in its model.json, or set at upload): a pretrained
 * network expects its inputs as it was trained, so a job feeds every dataset by the base's
 * convention when it has one. Pure (no tfjs, no I/O): the API checks it, the training child and
 * the predictor apply it through channelAffine.
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

/** Stored values are the model's inputs. */
const RAW_VALUES: Preprocessing = { scale: 1, offset: 0 };

/**
 * How a prediction feeds a model, the predict route's examples and a predict job's dataset alike:
 * by the convention its record holds (the one it was trained or uploaded with), else raw values.
 */
export const predictionPreprocessing = (recorded: Preprocessing | null): Preprocessing => recorded ?? RAW_VALUES;

/** Per-channel input = stored * scale[c] + offset[c], channels last. */
export interface ChannelAffine {
  scale: Float32Array;
  offset: Float32Array;
}

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

/**
 * The per-channel affine map of `p` for examples of `channels` channels (channels last; 1 for
 * data that are not images). A one-entry mean/std applies to every channel; otherwise it must
 * have one entry per channel, which the caller has checked (see channelProblem).
 */
export function channelAffine(p: Preprocessing, channels: number): ChannelAffine {
  const scale = new Float32Array(channels);
  const offset = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    if ('scale' in p) {
      scale[c] = p.scale;
      offset[c] = p.offset;
    } else if ('range' in p) {
      const [low = 0, high = 1] = p.range;
      scale[c] = (high - low) / 255;
      offset[c] = low;
    } else {
      const mean = p.mean.length === 1 ? p.mean[0] : p.mean[c];
      const std = p.std.length === 1 ? p.std[0] : p.std[c];
      scale[c] = 1 / (255 * std);
      offset[c] = -mean / std;
    }
  }
  return { scale, offset };
}

/** Why `p` cannot feed examples of `channels` channels (a per-channel mean/std of another length), or undefined. */
export function channelProblem(p: Preprocessing, channels: number): string | undefined {
  if (!('mean' in p) || p.mean.length === 1 || p.mean.length === channels) return undefined;
  return `has ${p.mean.length} per-channel means, but the examples have ${channels} channel${channels === 1 ? '' : 's'}`;
}

/** Whether two conventions map every stored value alike. */
export function samePreprocessing(a: Preprocessing, b: Preprocessing, channels = 3): boolean {
  const [x, y] = [channelAffine(a, channels), channelAffine(b, channels)];
  const close = (u: number, v: number) => Math.abs(u - v) <= 1e-6 * Math.max(1, Math.abs(u), Math.abs(v));
  return x.scale.every((s, c) => close(s, y.scale[c]) && close(x.offset[c], y.offset[c]));
}

/** A convention in words, for logs and errors. */
export function describePreprocessing(p: Preprocessing): string {
  if ('scale' in p) return `scale ${p.scale} and offset ${p.offset}`;
  if ('range' in p) return `pixels mapped onto [${p.range.join(', ')}]`;
  return `mean [${p.mean.join(', ')}] and std [${p.std.join(', ')}] over pixel / 255`;
}

/**
 * Rewrites `values` (examples of `channels` channels, channels last) in place into model inputs,
 * as the training batches are made (workers/training/data.ts); null leaves them as they are.
 */
export function applyPreprocessing(values: Float32Array, preprocessing: Preprocessing | null, channels: number): Float32Array {
  if (preprocessing === null) return values;
  const { scale, offset } = channelAffine(preprocessing, channels);
  for (let i = 0; i < values.length; i++) {
    const c = i % channels;
    values[i] = values[i] * scale[c] + offset[c];
  }
  return values;
}
