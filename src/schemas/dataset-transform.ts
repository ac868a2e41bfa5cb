/**
 * How a derived dataset is made from another: its own file because the conversion jobs of
 * src/artifacts/ingest carry it, and the dataset schema imports the upload-format registry there.
 */
import { Type, type Static } from '@sinclair/typebox';

const ClassName = Type.String({ minLength: 1, maxLength: 200 });

export const Transform = Type.Object(
  {
    seed: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0, description: 'seeds split, subset and noise; the same seed gives the same dataset' }),
    ),
    split: Type.Optional(
      Type.Object(
        {
          part: Type.Union([Type.Literal('train'), Type.Literal('validation')]),
          fraction: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, description: 'share of each class that goes to `validation`' }),
        },
        {
          additionalProperties: false,
          description: 'applied first: a seeded split stratified by class; the two parts of one (seed, fraction) are disjoint and together are the source',
        },
      ),
    ),
    classes: Type.Optional(
      Type.Object(
        {
          keep: Type.Array(ClassName, { minItems: 1, uniqueItems: true, description: 'class names of the source to keep' }),
          remap: Type.Optional(
            Type.Boolean({
              default: true,
              description: 'true: the kept classes become 0..k-1 in the order of `keep`; false: labels and `classes` stay those of the source',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    subset: Type.Optional(
      Type.Object(
        {
          perClass: Type.Optional(Type.Integer({ minimum: 1, description: 'keep at most this many examples of each class' })),
          fraction: Type.Optional(
            Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'keep this share of each class (at least one example of a non-empty class)' }),
          ),
        },
        { additionalProperties: false, minProperties: 1, maxProperties: 1, description: 'seeded, per class: exactly one of perClass or fraction' },
      ),
    ),
    scale: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 10, description: 'zoom about the image centre; 2 doubles the size' })),
    rotate: Type.Optional(Type.Number({ minimum: -360, maximum: 360, description: 'degrees, counter-clockwise as the image is viewed' })),
    translate: Type.Optional(
      Type.Object(
        { x: Type.Number({ minimum: -4096, maximum: 4096 }), y: Type.Number({ minimum: -4096, maximum: 4096 }) },
        { additionalProperties: false, description: 'pixels; positive x moves right, positive y down' },
      ),
    ),
    invert: Type.Optional(Type.Boolean({ description: 'uint8: 255 - v; float32: (min + max) - v over the source' })),
    noise: Type.Optional(
      Type.Object(
        { sigma: Type.Number({ minimum: 0, maximum: 100, description: 'standard deviation in model-input units (after preprocessing)' }) },
        { additionalProperties: false, description: 'additive Gaussian noise' },
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      'At least one operation. Applied in this order: split, classes, subset, then per example scale+rotate+translate (one bilinear resampling about the centre, zero fill), invert, noise. ' +
      'Image operations need image-like examples (see `imageShape`).',
  },
);
export type Transform = Static<typeof Transform>;
