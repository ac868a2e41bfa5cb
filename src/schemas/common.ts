import { Type, type Static, type TSchema } from '@sinclair/typebox';

/** RFC 9457 problem details, the body of every error response. */
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'URI naming the kind of problem' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          pointer: Type.String({ description: 'JSON pointer to the offending field, e.g. /hyperparameters/epochs' }),
          detail: Type.String(),
        }),
      ),
    ),
  },
  { $id: 'Problem', description: 'Error response (application/problem+json)' },
);
export type Problem = Static<typeof Problem>;

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) });
export type IdParams = Static<typeof IdParams>;

export const PageQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    after: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'cursor: the nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);
export type PageQuery = Static<typeof PageQuery>;

export function Page<T extends TSchema>(item: T) {
  return Type.Object({
    data: Type.Array(item),
    hasMore: Type.Boolean(),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
  });
}

export const Metrics = Type.Record(Type.String(), Type.Unknown(), {
  description: 'named figures, e.g. loss, accuracy, testAccuracy, samplesPerSecond',
});
