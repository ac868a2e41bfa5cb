import { Type, type Static } from '@sinclair/typebox';

export const JobEvent = Type.Object(
  {
    seq: Type.Integer({ description: 'per-job sequence number from 1, gap-free; the SSE id' }),
    type: Type.Union(['status', 'progress', 'metrics', 'checkpoint', 'log'].map((t) => Type.Literal(t))),
    createdAt: Type.String({ format: 'date-time' }),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { $id: 'JobEvent' },
);

export const EventsQuery = Type.Object(
  {
    after: Type.Integer({ minimum: 0, default: 0, description: 'return events with seq greater than this' }),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
);
export type EventsQuery = Static<typeof EventsQuery>;

export const Checkpoint = Type.Object({
  epoch: Type.Integer(),
  step: Type.Integer(),
  attempt: Type.Integer(),
  metrics: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.String({ format: 'date-time' }),
});
