import { Type, type Static } from '@sinclair/typebox';

export const BuiltinSource = Type.Object(
  {
    builtin: Type.Literal('mnist', { description: 'built-in dataset; mnist ships with the service' }),
    split: Type.Union([Type.Literal('train'), Type.Literal('test')]),
    limit: Type.Optional(Type.Integer({ minimum: 1, description: 'keep only the first `limit` examples (quick trials)' })),
  },
  { additionalProperties: false },
);

export const CreateDataset = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    source: BuiltinSource,
  },
  {
    $id: 'CreateDataset',
    additionalProperties: false,
    examples: [{ name: 'mnist-train', source: { builtin: 'mnist', split: 'train' } }],
  },
);
export type CreateDataset = Static<typeof CreateDataset>;

export const Dataset = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('dataset'),
    name: Type.String(),
    status: Type.Union([Type.Literal('validating'), Type.Literal('ready'), Type.Literal('failed')]),
    source: Type.Record(Type.String(), Type.Unknown()),
    numExamples: Type.Union([Type.Integer(), Type.Null()]),
    featureShape: Type.Union([Type.Array(Type.Integer()), Type.Null()]),
    numClasses: Type.Union([Type.Integer(), Type.Null()]),
    classes: Type.Union([Type.Array(Type.String()), Type.Null()]),
    classCounts: Type.Union([Type.Array(Type.Integer()), Type.Null()], { description: 'examples per class, in the order of `classes`' }),
    preprocessing: Type.Union([Type.Object({ scale: Type.Number(), offset: Type.Number() }), Type.Null()], {
      description: 'model input = stored value * scale + offset',
    }),
    error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Dataset' },
);
export type Dataset = Static<typeof Dataset>;
