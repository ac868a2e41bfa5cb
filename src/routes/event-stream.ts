/**
 * The event log of a job or a sweep, as JSON pages or a server-sent event stream: one route
 * shape for both, registered by each resource with how to find its owner and read its log.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@sinclair/typebox';
import type { AppDeps } from '../deps.js';
import { HttpProblem, notFound } from '../plugins/problem.js';
import { IdParams, Problem } from '../schemas/common.js';
import { EventsQuery } from '../schemas/event.js';
import type { JobEvent } from '../store/events.js';

const SSE_BATCH = 500;
const HEARTBEAT_MS = 15_000;
// the store is the truth; pub/sub only makes a stream prompt, so also look now and then
const POLL_MS = 2_000;

type StoredEvent = JobEvent<string>;

export interface EventLogSource {
  /** 'Job' or 'Sweep', for the 404 */
  what: string;
  tags: string[];
  summary: string;
  event: TSchema;
  /** whether the tenant has this owner */
  exists(id: string, tenant: string): Promise<boolean>;
  list(id: string, after: number, limit: number): Promise<StoredEvent[]>;
  /** whether this event ends the log (its terminal status) */
  ends(ev: StoredEvent): boolean;
  /** whether the owner has ended: a stream resumed after its last event stops at once */
  ended(id: string): Promise<boolean>;
}

// open streams by tenant in this process, jobs' and sweeps' together: each holds a socket, a subscription and a poll loop
const openStreamsByApp = new WeakMap<AppDeps, Map<string, number>>();

export function eventLogRoutes(source: EventLogSource): FastifyPluginAsyncTypebox {
  return async (app) => {
    const { live } = app.deps;
    const { maxSseStreamsPerTenant } = app.deps.config;
    let openStreams = openStreamsByApp.get(app.deps);
    if (!openStreams) openStreamsByApp.set(app.deps, (openStreams = new Map<string, number>()));
    const streams = openStreams;

    app.get('/:id/events', {
      schema: {
        tags: source.tags,
        summary: source.summary,
        description:
          'With `Accept: text/event-stream` the answer is an SSE stream: each event is sent once, in order, with `id:` = its seq ' +
          'and `event:` = its type; `Last-Event-ID` (or `?after=`) resumes after that seq; the stream ends after the terminal ' +
          'status event. Otherwise a JSON page of events with seq > `after`. One tenant may hold MAX_SSE_STREAMS_PER_TENANT ' +
          "streams open at once (per API process, jobs' and sweeps' together); one more is a 429.",
        params: IdParams,
        querystring: EventsQuery,
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })) }),
        response: {
          200: Type.Object({ data: Type.Array(source.event), hasMore: Type.Boolean(), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          404: Problem,
          429: Problem,
        },
      },
      handler: async (req, reply) => {
        const id = req.params.id;
        if (!(await source.exists(id, req.tenant))) throw notFound(source.what, id, '/id');
        const lastEventId = req.headers['last-event-id'];
        const after = lastEventId !== undefined ? Number(lastEventId) : req.query.after;

        if (!(req.headers.accept ?? '').includes('text/event-stream')) {
          const events = await source.list(id, after, req.query.limit + 1);
          const hasMore = events.length > req.query.limit;
          const data = hasMore ? events.slice(0, req.query.limit) : events;
          return { data, hasMore, nextCursor: hasMore ? String(data[data.length - 1].seq) : null };
        }

        const open = streams.get(req.tenant) ?? 0;
        if (open >= maxSseStreamsPerTenant) {
          throw new HttpProblem(
            429,
            'too_many_streams',
            'Too many event streams',
            `tenant ${req.tenant} already has ${open} event streams open (MAX_SSE_STREAMS_PER_TENANT); close one, or read events as JSON pages without Accept: text/event-stream`,
          );
        }
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        res.write('retry: 1000\n\n');

        let last = after;
        let closed = false;
        let wake: () => void = () => undefined;
        const unsubscribe = live.subscribe(id, () => wake());
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
        req.raw.on('close', () => {
          closed = true;
          wake();
        });
        // no await since the check above: the count cannot have moved meanwhile
        streams.set(req.tenant, open + 1);
        try {
          for (;;) {
            const events = await source.list(id, last, SSE_BATCH);
            let ended = false;
            for (const ev of events) {
              res.write(`id: ${ev.seq}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`);
              last = ev.seq;
              if (source.ends(ev)) ended = true;
            }
            if (ended || closed) break;
            if (events.length === SSE_BATCH) continue;
            // resumed after the terminal event: nothing more will ever come
            if (events.length === 0 && (await source.ended(id))) break;
            await new Promise<void>((ok) => {
              const timer = setTimeout(ok, POLL_MS);
              wake = () => {
                clearTimeout(timer);
                ok();
              };
            });
            if (closed) break;
          }
        } catch (err) {
          req.log.error({ err, id }, 'event stream failed');
        } finally {
          clearInterval(heartbeat);
          unsubscribe();
          res.end();
          const left = (streams.get(req.tenant) ?? 1) - 1;
          if (left > 0) streams.set(req.tenant, left);
          else streams.delete(req.tenant);
        }
      },
    });
  };
}
