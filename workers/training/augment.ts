/**
 * Augmentation of training examples on the fly (hyperparameters.augment): random flips, one
 * bilinear resampling for rotation, zoom and translation together, brightness, contrast and
 * Gaussian noise, on an example's stored values before its preprocessing. Every draw comes from
 * a generator seeded by (seed, epoch, step) at the start of each batch and used in example
 * order, so a batch is augmented alike however the run got there: a resumed job ends bit for
 * bit as its uninterrupted twin. Hand-written: a few loops over one example, cheaper than a
 * round trip through tensors, and seeded exactly as the batches are.
 */
import { mulberry32 } from '../../src/artifacts/ingest/random.js';
import { movesPixels } from '../../src/jobs/augmentation.js';
import { TrainingError } from '../../src/jobs/task.js';
import type { Augment } from '../../src/schemas/augment.js';

export interface AugmenterOptions {
  /** [h, w, c] of an example, channels last; needed by the geometric changes */
  image: number[] | undefined;
  /** stored uint8 pixels: shifts are in units of 255 and results stay in 0-255; else float32 values, units of 1, unbounded */
  pixels: boolean;
  /** the spec field blamed when the data cannot be augmented as asked */
  param: string;
}

export class Augmenter {
  private random: () => number = mulberry32(0);
  private readonly image: [number, number, number] | undefined;
  private readonly unit: number;
  private readonly pixels: boolean;
  /** the resampled example, before it is copied back */
  private readonly warped: Float32Array;
  private readonly geometric: boolean;

  constructor(
    private readonly spec: Augment,
    o: AugmenterOptions,
  ) {
    this.geometric = movesPixels(spec);
    const image = o.image;
    if (image?.length === 3) this.image = [image[0], image[1], image[2]];
    else if (this.geometric) {
      throw new TrainingError(
        'invalid_spec',
        `hyperparameters.augment flips, rotates, translates or scales images, but the examples are not images (they have no imageShape); expected only brightness, contrast or noise for them`,
        {
          param: o.param,
        },
      );
    }
    this.pixels = o.pixels;
    this.unit = o.pixels ? 255 : 1;
    this.warped = new Float32Array(this.geometric && this.image ? this.image[0] * this.image[1] * this.image[2] : 0);
  }

  /** Seeds the draws of one batch: the same (seed, epoch, step) always gives the same changes. */
  begin(seed: number, epoch: number, step: number): void {
    this.random = mulberry32(Math.imul(seed ^ 0x27d4eb2f, 0x165667b1) ^ Math.imul(epoch, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca77));
  }

  /** Augments one example in place, drawing its changes from the batch's generator. */
  apply(v: Float32Array): void {
    const s = this.spec;
    const r = this.random;
    // every draw is made whatever is asked, so each change's values do not depend on the others
    const flipX = r() < 0.5 && (s.flip === 'horizontal' || s.flip === 'both');
    const flipY = r() < 0.5 && (s.flip === 'vertical' || s.flip === 'both');
    const angle = (2 * r() - 1) * (s.rotate ?? 0);
    const zoom = 1 + (2 * r() - 1) * (s.scale ?? 0);
    const shiftX = (2 * r() - 1) * (s.translate ?? 0);
    const shiftY = (2 * r() - 1) * (s.translate ?? 0);
    const brightness = (2 * r() - 1) * (s.brightness ?? 0) * this.unit;
    const contrast = 1 + (2 * r() - 1) * (s.contrast ?? 0);
    if (this.geometric && this.image) this.resample(v, this.image, { flipX, flipY, angle, zoom, shiftX, shiftY });
    let mean = 0;
    if (contrast !== 1) {
      for (let k = 0; k < v.length; k++) mean += v[k];
      mean /= v.length;
    }
    const sigma = (s.noise ?? 0) * this.unit;
    const low = this.pixels ? 0 : -Infinity;
    const high = this.pixels ? 255 : Infinity;
    for (let k = 0; k < v.length; k++) {
      let value = mean + (v[k] - mean) * contrast + brightness;
      if (sigma > 0) value += sigma * this.gaussian();
      v[k] = value < low ? low : value > high ? high : value;
    }
  }

  /** A standard normal draw (Box-Muller). */
  private gaussian(): number {
    const u = 1 - this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }

  /**
   * One bilinear resampling about the image centre: each output pixel p' samples the source at
   * F R^T (p' - t) / zoom, with F the flips and R the rotation (counter-clockwise as viewed, as in
   * src/artifacts/ingest/geometry.ts). Pixels from outside the source are 0.
   */
  private resample(
    v: Float32Array,
    [h, w, c]: [number, number, number],
    g: { flipX: boolean; flipY: boolean; angle: number; zoom: number; shiftX: number; shiftY: number },
  ): void {
    const out = this.warped;
    const rad = (g.angle * Math.PI) / 180;
    const [cos, sin] = [Math.cos(rad), Math.sin(rad)];
    const cx = (w - 1) / 2;
    const cy = (h - 1) / 2;
    const tx = g.shiftX * w;
    const ty = g.shiftY * h;
    const fx = g.flipX ? -1 : 1;
    const fy = g.flipY ? -1 : 1;
    const at = (x: number, y: number, ch: number) => (x >= 0 && x < w && y >= 0 && y < h ? v[(y * w + x) * c + ch] : 0);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const u = x - cx - tx;
        const q = y - cy - ty;
        const sx = cx + (fx * (cos * u - sin * q)) / g.zoom;
        const sy = cy + (fy * (sin * u + cos * q)) / g.zoom;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const ax = sx - x0;
        const ay = sy - y0;
        const to = (y * w + x) * c;
        for (let ch = 0; ch < c; ch++) {
          const top = at(x0, y0, ch) * (1 - ax) + (ax === 0 ? 0 : at(x0 + 1, y0, ch) * ax);
          const bottom = ay === 0 ? 0 : at(x0, y0 + 1, ch) * (1 - ax) + (ax === 0 ? 0 : at(x0 + 1, y0 + 1, ch) * ax);
          out[to + ch] = top * (1 - ay) + bottom * ay;
        }
      }
    }
    v.set(out);
  }
}
