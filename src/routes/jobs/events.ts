import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { JobEvent } from '../../schemas/event.js';
import { TERMINAL_STATUSES, type JobStatus } from '../../schemas/job.js';
import { eventLogRoutes } from '../event-stream.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store } = app.deps;
  await app.register(
    eventLogRoutes({
      what: 'Job',
      tags: ['jobs'],
      summary: 'The event log of a job, as JSON pages or a server-sent event stream',
      event: JobEvent,
      exists: async (id, tenant) => (await store.jobs.get(id, tenant)) !== null,
      list: (id, after, limit) => store.events.list(id, after, limit),
      ends: (ev) => ev.type === 'status' && TERMINAL_STATUSES.includes(ev.data.status as JobStatus),
      ended: async (id) => TERMINAL_STATUSES.includes((await store.jobs.get(id))!.status),
    }),
  );
};

export default routes;
