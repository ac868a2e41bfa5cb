import { Type, type Static } from '@sinclair/typebox';
import { Preprocessing } from './preprocessing.js';
import { Metrics } from './common.js';

export const Model = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    name: Type.String(),
    status: Type.Union([Type.Literal('validating'), Type.Literal('ready'), Type.Literal('failed')]),
    jobId: Type.Union([Type.String(), Type.Null()], { description: 'the job that trained it; null for an uploaded model' }),
    baseModelId: Type.Union([Type.String(), Type.Null()], { description: 'the model it was fine-tuned from' }),
    datasetIds: Type.Record(Type.String(), Type.String(), { description: 'datasets of the job, by role (train, validation, test)' }),
    metrics: Type.Union([Metrics, Type.Null()]),
    inputShape: Type.Union([Type.Array(Type.Integer()), Type.Null()], {
      description: 'shape of one input, batch dimension left out; null when it has free dimensions',
    }),
    classes: Type.Union([Type.Array(Type.String()), Type.Null()]),
    preprocessing: Type.Union([Preprocessing, Type.Null()], {
      description:
        'the input convention the model was trained with ({scale, offset}, {range} or {mean, std}; see Preprocessing); every dataset a job feeds it is fed by it. ' +
        "null when an uploaded model does not say (training then uses each dataset's own)",
    }),
    source: Type.Union([Type.Object({ url: Type.String() }), Type.Null()], {
      description: 'where an imported model was fetched from; null for uploads and trained models',
    }),
    error: Type.Union(
      [
        Type.Object({
          code: Type.String({ description: 'e.g. fetch_failed, untrainable_layers, invalid_model, storage_quota_exceeded' }),
          message: Type.String({ description: 'what was wrong, where, and what was expected' }),
          pointer: Type.Optional(
            Type.String({
              description:
                'JSON pointer at the fault: /source/url, /modelJson/weightsManifest/0/paths/1, /modelJson/modelTopology/model_config/config/layers/17, ...',
            }),
          ),
        }),
        Type.Null(),
      ],
      { description: 'why a `failed` import failed' },
    ),
    files: Type.Object({ modelJson: Type.String(), weights: Type.String() }, { description: 'download URLs (tf.loadLayersModel reads modelJson)' }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Model' },
);
export type Model = Static<typeof Model>;

/** Import a model from a URL: model.json there, its weights files beside it (as the manifest names them). */
export const ImportModel = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'default: "imported model"' })),
    source: Type.Object(
      {
        url: Type.String({
          minLength: 1,
          maxLength: 2048,
          description: 'http(s) URL of model.json; fetched only from global unicast addresses (or MODEL_IMPORT_ALLOWED_HOSTS)',
        }),
      },
      { additionalProperties: false },
    ),
    preprocessing: Type.Optional(Preprocessing),
  },
  {
    additionalProperties: false,
    examples: [
      { name: 'mobilenet', source: { url: 'https://models.example/mobilenet_v2/model.json' }, preprocessing: { scale: 0.00784313725490196, offset: -1 } },
    ],
  },
);
export type ImportModel = Static<typeof ImportModel>;

const binary = (description: string) => Type.Unsafe<unknown>({ type: 'string', format: 'binary', description });

/** Documents the multipart model upload; the route checks the fields itself. */
export const UploadModelForm = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'default: "uploaded model"' })),
    modelJson: binary('model.json of a tfjs LayersModel (a file, or its text)'),
    weights: Type.Array(binary('a weights file named in the manifest; repeat the field for every shard (matched by file name)')),
    preprocessing: Type.Optional(
      Type.String({
        description:
          'JSON {"scale", "offset"}: the base\'s input convention (input = raw * scale + offset); wins over userDefinedMetadata.tfjsAdapt.preprocessing',
      }),
    ),
  },
  { additionalProperties: false },
);
