import { Type, type Static } from '@sinclair/typebox';
import { DatasetError } from './dataset-error.js';
import { Transform } from './dataset-transform.js';
import { FILE_FIELDS, FORMAT_NAMES, FORMATS, formatsWithOption, OPTIONS, type OptionName } from '../artifacts/ingest/formats.js';

const DatasetId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

export const BuiltinSource = Type.Object(
  {
    builtin: Type.Literal('mnist', { description: 'built-in dataset; mnist ships with the service' }),
    split: Type.Union([Type.Literal('train'), Type.Literal('test')]),
    limit: Type.Optional(Type.Integer({ minimum: 1, description: 'keep only the first `limit` examples (quick trials)' })),
  },
  { additionalProperties: false },
);
export type BuiltinSource = Static<typeof BuiltinSource>;

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

const choicesOf = (o: OptionName) => {
  const option = OPTIONS[o];
  return 'choices' in option ? { enum: [...option.choices] } : {};
};

/** Documents the multipart upload from the format registry; the route checks the fields itself (see routes/datasets/upload-form.ts). */
export const UploadDatasetForm = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    format: Type.Union(FORMAT_NAMES.map((f) => Type.Literal(f))),
    ...Object.fromEntries(
      FILE_FIELDS.map((field) => [
        field,
        Type.Optional(
          binary(
            FORMAT_NAMES.filter((f) => field in FORMATS[f].files)
              .map((f) => `${f}: ${(FORMATS[f].files as Record<string, string>)[field]}`)
              .join('; '),
          ),
        ),
      ]),
    ),
    ...Object.fromEntries(
      (Object.keys(OPTIONS) as OptionName[]).map((o) => [
        o,
        // "formats: doc", with the values when there are few: the dashboard's upload form is drawn from these
        Type.Optional(Type.String({ description: `${formatsWithOption(o).join(', ')}: ${OPTIONS[o].doc}`, ...choicesOf(o) })),
      ]),
    ),
  },
  { additionalProperties: false },
);

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
