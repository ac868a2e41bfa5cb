import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrainingError } from '../../../src/jobs/task.js';
import { Augmenter } from '../../../workers/training/augment.js';

/** A 3x4 one-channel image whose pixels are 10, 20, ..., 120, row by row. */
const image = () => Float32Array.from({ length: 12 }, (_, i) => 10 * (i + 1));
const mirrored = (v: ArrayLike<number>, h: number, w: number) => Array.from({ length: h * w }, (_, k) => v[Math.floor(k / w) * w + (w - 1 - (k % w))]);

function augmented(augmenter: Augmenter, seed: number, epoch: number, step: number, examples = 4): number[][] {
  augmenter.begin(seed, epoch, step);
  return Array.from({ length: examples }, () => {
    const v = image();
    augmenter.apply(v);
    return Array.from(v);
  });
}

test('a flip mirrors an image exactly or leaves it, each about half the time', () => {
  const augmenter = new Augmenter({ flip: 'horizontal' }, { image: [3, 4, 1], pixels: true, param: '/hyperparameters/augment' });
  let flipped = 0;
  for (let step = 0; step < 50; step++) {
    for (const v of augmented(augmenter, 1, 1, step)) {
      if (v.join() === mirrored(image(), 3, 4).join()) flipped++;
      else assert.deepEqual(v, Array.from(image()));
    }
  }
  assert.ok(flipped > 60 && flipped < 140, `${flipped} of 200 flipped`);
});

test('augmentation is fixed by (seed, epoch, step): the same batch replays, another step or seed differs', () => {
  const spec = { flip: 'both' as const, rotate: 30, translate: 0.2, scale: 0.2, brightness: 0.2, contrast: 0.3, noise: 0.05 };
  const make = () => new Augmenter(spec, { image: [3, 4, 1], pixels: true, param: '/hyperparameters/augment' });
  const [a, b] = [make(), make()];
  const first = augmented(a, 7, 2, 3);
  augmented(a, 7, 2, 4);
  assert.deepEqual(augmented(b, 7, 2, 3), first, 'a fresh augmenter replays the batch without the ones before it');
  assert.notDeepEqual(augmented(b, 7, 2, 4), first);
  assert.notDeepEqual(augmented(b, 7, 3, 3), first);
  assert.notDeepEqual(augmented(b, 8, 2, 3), first);
  assert.notDeepEqual(first[0], first[1], 'examples of one batch get their own changes');
  for (const v of first)
    assert.ok(
      v.every((x) => x >= 0 && x <= 255),
      'pixels stay within 0-255',
    );
});

test('brightness shifts every value alike by up to its bound; pixels are clipped, float32 values are not', () => {
  const pixels = new Augmenter({ brightness: 1 }, { image: undefined, pixels: true, param: '/hyperparameters/augment' });
  const floats = new Augmenter({ brightness: 1 }, { image: undefined, pixels: false, param: '/hyperparameters/augment' });
  for (let step = 0; step < 20; step++) {
    for (const v of augmented(floats, 3, 1, step)) {
      const shift = v[0] - 10;
      assert.ok(Math.abs(shift) <= 1);
      v.forEach((x, i) => assert.ok(Math.abs(x - 10 * (i + 1) - shift) < 1e-4));
    }
    for (const v of augmented(pixels, 3, 1, step)) assert.ok(v.every((x) => x >= 0 && x <= 255));
  }
});

test('geometric augmentation of examples that are not images is refused with the field to change', () => {
  assert.throws(
    () => new Augmenter({ rotate: 10 }, { image: undefined, pixels: false, param: '/hyperparameters/augment' }),
    (err: unknown) => err instanceof TrainingError && err.code === 'invalid_spec' && err.param === '/hyperparameters/augment' && /not images/.test(err.message),
  );
});
