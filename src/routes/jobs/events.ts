import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HttpProblem, notFound } from '../../plugins/problem.js';
import { IdParams, Problem } from '../../schemas/common.js';
import { EventsQuery, JobEvent } from '../../schemas/event.js';
import { TERMINAL_STATUSES, type JobStatus } from '../../schemas/job.js';
import type { JobEvent as StoredEvent } from '../../store/events.js';

const SSE_BATCH = 500;
const HEARTBEAT_MS = 15_000;
// the store is the truth; pub/sub only makes a stream prompt, so also look now and then
const POLL_MS = 2_000;

const isTerminal = (ev: StoredEvent) => ev.type === 'status' && TERMINAL_STATUSES.includes(ev.data.status as JobStatus);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, live } = app.deps;
  const { maxSseStreamsPerTenant } = app.deps.config;
  // open streams by tenant in this process: each holds a socket, a subscription and a poll loop
  const openStreams = new Map<string, number>();

  app.get('/:id/events', {
    schema: {
      tags: ['jobs'],
      summary: 'The event log of a job, as JSON pages or a server-sent event stream',
      description:
        'With `Accept: text/event-stream` the answer is an SSE stream: each event is sent once, in order, with `id:` = its seq ' +
        'and `event:` = its type; `Last-Event-ID` (or `?after=`) resumes after that seq; the stream ends after the terminal ' +
        'status event. Otherwise a JSON page of events with seq > `after`. One tenant may hold MAX_SSE_STREAMS_PER_TENANT ' +
        'streams open at once (per API process); one more is a 429.',
      params: IdParams,
      querystring: EventsQuery,
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })) }),
      response: {
        200: Type.Object({ data: Type.Array(JobEvent), hasMore: Type.Boolean(), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
        404: Problem,
        429: Problem,
      },
    },
    handler: async (req, reply) => {
      const jobId = req.params.id;
      if (!(await store.jobs.get(jobId, req.tenant))) throw notFound('Job', jobId, '/id');
      const lastEventId = req.headers['last-event-id'];
      const after = lastEventId !== undefined ? Number(lastEventId) : req.query.after;

      if (!(req.headers.accept ?? '').includes('text/event-stream')) {
        const events = await store.events.list(jobId, after, req.query.limit + 1);
        const hasMore = events.length > req.query.limit;
        const data = hasMore ? events.slice(0, req.query.limit) : events;
        return { data, hasMore, nextCursor: hasMore ? String(data[data.length - 1]!.seq) : null };
      }

      const open = openStreams.get(req.tenant) ?? 0;
      if (open >= maxSseStreamsPerTenant) {
        throw new HttpProblem(429, 'too_many_streams', 'Too many event streams', `tenant ${req.tenant} already has ${open} event streams open (MAX_SSE_STREAMS_PER_TENANT); close one, or read events as JSON pages without Accept: text/event-stream`);
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
      const unsubscribe = live.subscribe(jobId, () => wake());
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
      req.raw.on('close', () => {
        closed = true;
        wake();
      });
      // no await since the check above: the count cannot have moved meanwhile
      openStreams.set(req.tenant, open + 1);
      try {
        for (;;) {
          const events = await store.events.list(jobId, last, SSE_BATCH);
          let ended = false;
          for (const ev of events) {
            res.write(`id: ${ev.seq}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`);
            last = ev.seq;
            if (isTerminal(ev)) ended = true;
          }
          if (ended || closed) break;
          if (events.length === SSE_BATCH) continue;
          // resumed after the terminal event: nothing more will ever come
          if (events.length === 0 && TERMINAL_STATUSES.includes((await store.jobs.get(jobId))!.status)) break;
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
        req.log.error({ err, jobId }, 'event stream failed');
      } finally {
        clearInterval(heartbeat);
        unsubscribe();
        res.end();
        const left = (openStreams.get(req.tenant) ?? 1) - 1;
        if (left > 0) openStreams.set(req.tenant, left);
        else openStreams.delete(req.tenant);
      }
    },
  });
};

export default routes;
