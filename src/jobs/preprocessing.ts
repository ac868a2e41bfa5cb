/**
 * A model's input convention: how stored example values become the numbers a network takes.
 * Datasets carry one (`{scale, offset}`, set at upload), and a base model may declare its own
 * (`userDefinedMetadata.tfjsAdapt.preprocessing` in its model.json, or set at upload): a pretrained
 * network expects its inputs as it was trained, so a job feeds every dataset by the base's
 * convention when it has one. Pure (no tfjs, no I/O, no TypeBox: the schema and its check are in
 * src/schemas/preprocessing.ts): the training child and the predictor apply it through channelAffine.
 */
import type { Preprocessing } from '../schemas/preprocessing.js';

export type { Preprocessing };

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
