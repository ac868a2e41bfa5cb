import { Type, type Static } from '@sinclair/typebox';
import { Metrics } from './common.js';

export const Model = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    name: Type.String(),
    status: Type.Union([Type.Literal('validating'), Type.Literal('ready'), Type.Literal('failed')]),
    jobId: Type.Union([Type.String(), Type.Null()], { description: 'the job that trained it' }),
    baseModelId: Type.Union([Type.String(), Type.Null()], { description: 'the model it was fine-tuned from' }),
    datasetIds: Type.Record(Type.String(), Type.String(), { description: 'datasets of the job, by role (train, validation, test)' }),
    metrics: Type.Union([Metrics, Type.Null()]),
    inputShape: Type.Union([Type.Array(Type.Integer()), Type.Null()]),
    classes: Type.Union([Type.Array(Type.String()), Type.Null()]),
    preprocessing: Type.Union([Type.Object({ scale: Type.Number(), offset: Type.Number() }), Type.Null()]),
    files: Type.Object({ modelJson: Type.String(), weights: Type.String() }, { description: 'download URLs (tf.loadLayersModel reads modelJson)' }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Model' },
);
export type Model = Static<typeof Model>;
