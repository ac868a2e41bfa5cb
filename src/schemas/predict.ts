import { Type, type Static } from '@sinclair/typebox';

const TopK = Type.Integer({
  minimum: 1,
  description: 'how many classes each prediction lists, most probable first; default: every class (more than the model has: every class)',
});

export const PredictBody = Type.Object(
  {
    examples: Type.Array(Type.Unknown(), {
      minItems: 1,
      description:
        "the examples, each in the layout of the datasets the model was trained on, raw values as stored (e.g. pixels 0-255): nested as the model's `inputShape` " +
        "(`[28, 28, 1]`: 28 arrays of 28 arrays of one number) or flat (784 numbers). The model's preprocessing is applied by the service. At most PREDICT_MAX_EXAMPLES.",
    }),
    topK: Type.Optional(TopK),
  },
  { additionalProperties: false },
);
export type PredictBody = Static<typeof PredictBody>;

/** Documents the multipart form; the route reads it part by part. */
export const PredictForm = Type.Object(
  {
    image: Type.Array(Type.Unsafe<unknown>({ type: 'string', format: 'binary' }), {
      description:
        "one or more images (PNG, JPEG, WebP, GIF), repeated for several; each is resized to the model's input (stretched) and made greyscale or RGB as it takes",
    }),
    topK: Type.Optional(Type.String({ pattern: '^[1-9][0-9]*$', description: 'as in the JSON body, as text' })),
  },
  { additionalProperties: false },
);

export const ClassProbability = Type.Object({
  class: Type.String({ description: "the class name from the model's classes, else its index" }),
  probability: Type.Number({ minimum: 0, maximum: 1 }),
});

export const Predictions = Type.Object(
  {
    predictions: Type.Array(
      Type.Object({ classes: Type.Array(ClassProbability, { description: 'by falling probability; the probabilities of every class sum to 1' }) }),
      {
        description: 'one entry per example (or image), in the order sent',
      },
    ),
  },
  { $id: 'Predictions' },
);
export type Predictions = Static<typeof Predictions>;
