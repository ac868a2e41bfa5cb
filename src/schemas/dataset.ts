import { Type, type Static } from '@sinclair/typebox';
import { FILE_FIELDS, FORMAT_NAMES, FORMATS, formatsWithOption, OPTIONS, type OptionName } from '../artifacts/ingest/formats.js';

const DatasetId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const ClassName = Type.String({ minLength: 1, maxLength: 200 });

export const BuiltinSource = Type.Object(
  {
    builtin: Type.Literal('mnist', { description: 'built-in dataset; mnist ships with the service' }),
    split: Type.Union([Type.Literal('train'), Type.Literal('test')]),
    limit: Type.Optional(Type.Integer({ minimum: 1, description: 'keep only the first `limit` examples (quick trials)' })),
  },
  { additionalProperties: false },
);
export type BuiltinSource = Static<typeof BuiltinSource>;

export const Transform = Type.Object(
  {
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0, description: 'seeds split, subset and noise; the same seed gives the same dataset' })),
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
          remap: Type.Optional(Type.Boolean({ default: true, description: 'true: the kept classes become 0..k-1 in the order of `keep`; false: labels and `classes` stay those of the source' })),
        },
        { additionalProperties: false },
      ),
    ),
    subset: Type.Optional(
      Type.Object(
        {
          perClass: Type.Optional(Type.Integer({ minimum: 1, description: 'keep at most this many examples of each class' })),
          fraction: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'keep this share of each class (at least one example of a non-empty class)' })),
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

export const DerivedSource = Type.Object(
  {
    from: DatasetId,
    transform: Transform,
  },
  { additionalProperties: false, description: 'a new dataset made from a ready dataset' },
);
export type DerivedSource = Static<typeof DerivedSource>;

export const CreateBuiltinDataset = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), source: BuiltinSource },
  { additionalProperties: false },
);
export type CreateBuiltinDataset = Static<typeof CreateBuiltinDataset>;

export const CreateDerivedDataset = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), source: DerivedSource },
  { additionalProperties: false },
);
export type CreateDerivedDataset = Static<typeof CreateDerivedDataset>;

/** The JSON body; which branch applies is decided by `source.from` (see the route's validator). */
export const CreateDataset = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    source: Type.Union([BuiltinSource, DerivedSource]),
  },
  {
    $id: 'CreateDataset',
    additionalProperties: false,
    examples: [
      { name: 'mnist-train', source: { builtin: 'mnist', split: 'train' } },
      { name: 'mnist-rotated', source: { from: 'ds_...', transform: { rotate: 30 } } },
    ],
  },
);
export type CreateDataset = CreateBuiltinDataset | CreateDerivedDataset;

const binary = (description: string) => Type.Unsafe<unknown>({ type: 'string', format: 'binary', description });

/** Documents the multipart upload from the format registry; the route checks the fields itself (see routes/datasets/upload-form.ts). */
export const UploadDatasetForm = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    format: Type.Union(FORMAT_NAMES.map((f) => Type.Literal(f))),
    ...Object.fromEntries(
      FILE_FIELDS.map((field) => [
        field,
        Type.Optional(binary(FORMAT_NAMES.filter((f) => field in FORMATS[f].files).map((f) => `${f}: ${(FORMATS[f].files as Record<string, string>)[field]}`).join('; '))),
      ]),
    ),
    ...Object.fromEntries(
      (Object.keys(OPTIONS) as OptionName[]).map((o) => [o, Type.Optional(Type.String({ description: `${formatsWithOption(o).join(', ')}: ${OPTIONS[o].doc}` }))]),
    ),
  },
  { additionalProperties: false },
);

export const DatasetErrorLocation = Type.Object(
  {
    field: Type.Optional(Type.String({ description: 'the upload field holding the bad data: file, images or labels' })),
    line: Type.Optional(Type.Integer({ description: 'CSV, JSONL: line in the file, from 1 (the CSV header is line 1)' })),
    row: Type.Optional(Type.Integer({ description: 'CSV: data row, from 1 (header excluded)' })),
    column: Type.Optional(Type.Integer({ description: 'CSV: column number from 1; JSONL: character column from 1' })),
    columnName: Type.Optional(Type.String({ description: 'CSV: the header of that column' })),
    pointer: Type.Optional(Type.String({ description: 'JSONL: JSON pointer inside the line, e.g. /x/3' })),
    entry: Type.Optional(Type.String({ description: 'archive entry name' })),
    index: Type.Optional(Type.Integer({ description: 'IDX: item index, from 0' })),
    class: Type.Optional(Type.String({ description: 'the class concerned' })),
    expected: Type.Optional(Type.Integer()),
    found: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);
export type DatasetErrorLocation = Static<typeof DatasetErrorLocation>;

export const DatasetError = Type.Object(
  {
    code: Type.String({ description: 'e.g. ragged, not_numeric, not_finite, invalid_json, count_mismatch, corrupt_image, class_without_examples, empty' }),
    message: Type.String({ description: 'what was wrong, where, and what was expected' }),
    location: Type.Optional(DatasetErrorLocation),
  },
  { description: 'why a dataset failed' },
);
export type DatasetError = Static<typeof DatasetError>;

const Preprocessing = Type.Object({ scale: Type.Number(), offset: Type.Number() });

export const Dataset = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('dataset'),
    name: Type.String(),
    status: Type.Union([Type.Literal('validating'), Type.Literal('ready'), Type.Literal('failed')], {
      description: 'uploads and derived datasets start `validating` and become `ready` or `failed`',
    }),
    source: Type.Record(Type.String(), Type.Unknown()),
    numExamples: Type.Union([Type.Integer(), Type.Null()]),
    featureShape: Type.Union([Type.Array(Type.Integer()), Type.Null()], { description: 'shape of one example as the model takes it' }),
    featureDtype: Type.Union([Type.Literal('uint8'), Type.Literal('float32'), Type.Null()], { description: 'how values are stored' }),
    imageShape: Type.Union([Type.Array(Type.Integer()), Type.Null()], {
      description: '[h, w, c] when the examples are images (whatever featureShape says); null otherwise',
    }),
    numClasses: Type.Union([Type.Integer(), Type.Null()]),
    classes: Type.Union([Type.Array(Type.String()), Type.Null()]),
    classCounts: Type.Union([Type.Array(Type.Integer()), Type.Null()], { description: 'examples per class, in the order of `classes`' }),
    preprocessing: Type.Union([Preprocessing, Type.Null()], {
      description: 'model input = stored value * scale + offset',
    }),
    error: Type.Union([DatasetError, Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Dataset' },
);
export type Dataset = Static<typeof Dataset>;

export const ExamplesQuery = Type.Object(
  {
    offset: Type.Integer({ minimum: 0, default: 0 }),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
    features: Type.Boolean({ default: true, description: 'include the stored values of each example' }),
  },
  { additionalProperties: false },
);
export type ExamplesQuery = Static<typeof ExamplesQuery>;

export const Example = Type.Object({
  index: Type.Integer(),
  label: Type.Integer(),
  class: Type.String(),
  features: Type.Optional(Type.Array(Type.Number(), { description: 'stored values, flat, in featureShape order' })),
  image: Type.Optional(Type.String({ description: 'data:image/png;base64 URL of a preview at most 64 pixels a side, for image-like datasets' })),
});

export const ExamplesPage = Type.Object({
  data: Type.Array(Example),
  offset: Type.Integer(),
  total: Type.Integer({ description: 'numExamples of the dataset' }),
  nextOffset: Type.Union([Type.Integer(), Type.Null()], {
    description: 'where the next page starts (a page of large examples may hold fewer than `limit`); null after the last example',
  }),
});
