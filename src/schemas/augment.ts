import { Type, type Static } from '@sinclair/typebox';

const Bound = (maximum: number, description: string) => Type.Optional(Type.Number({ minimum: 0, maximum, description }));

/**
 * Random changes to every training example, drawn afresh for each batch of each epoch from
 * (seed, epoch, step): a resumed job sees the same ones. Values are those stored (pixels 0-255),
 * before the input convention; pixels stay in 0-255.
 */
export const Augment = Type.Object(
  {
    flip: Type.Optional(
      Type.Union([Type.Literal('horizontal'), Type.Literal('vertical'), Type.Literal('both')], {
        description: 'mirror each image with probability 1/2 (each axis, for both)',
      }),
    ),
    rotate: Bound(180, 'degrees: rotate each image by a uniform angle in [-rotate, rotate] about its centre'),
    translate: Bound(0.5, 'fraction of the image size: shift each image by up to this much, each axis (a random crop, the border filled with 0)'),
    scale: Bound(0.5, 'zoom each image by a factor in [1 - scale, 1 + scale]'),
    brightness: Bound(1, 'add a uniform shift in [-brightness, brightness] × 255 (× 1 for float32 data) to every value of an example'),
    contrast: Bound(1, "scale each example's deviations from its mean by a factor in [1 - contrast, 1 + contrast]"),
    noise: Bound(1, 'add Gaussian noise of this standard deviation × 255 (× 1 for float32 data) to every value'),
    apply: Type.Optional(
      Type.Array(Type.Union([Type.Literal('source'), Type.Literal('target')]), {
        minItems: 1,
        uniqueItems: true,
        description: 'domain_adaptation: which batches are augmented; default ["source"]. Train and finetune jobs augment data.train.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Augmentation of training batches on the fly (validation and test sets never). Geometric changes (flip, rotate, translate, scale) are one bilinear resampling and need image examples (a dataset with an imageShape). ' +
      'A frozen base cannot use a frozen-feature cache with augmentation.',
    examples: [{ flip: 'horizontal', rotate: 10, translate: 0.1, brightness: 0.1 }],
  },
);
export type Augment = Static<typeof Augment>;
