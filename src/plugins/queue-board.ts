import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { TrainingTask } from '../jobs/task.js';
import { HttpProblem, problemBody, type FieldError } from './problem.js';

const QUEUE_BOARD_PATH = '/admin/queues';

/** How bull-board answers its UI when a request is wrong: a translation key, for bad input naming the field. */
interface BoardError {
  error: { key: string; options?: { field?: unknown } & Record<string, unknown> };
}

const isBoardError = (payload: unknown): payload is BoardError =>
  typeof payload === 'object' && payload !== null && typeof (payload as BoardError).error?.key === 'string';

/** The keys a user of this board meets, said in full; any other is shown by its name. */
const DETAILS: Record<string, string> = {
  QUEUE_READ_ONLY:
    'the board is read-only: the store, not BullMQ, decides what state a job is in, so change jobs through the API (POST /v1/jobs/{id}/cancel, /pause, /resume)',
  QUEUE_NOT_FOUND: 'no queue of this board has that name; GET /admin/queues/api/queues lists them',
  JOB_NOT_FOUND: 'the queue holds no job with that id (finished jobs are trimmed from the queue; the store keeps them: GET /v1/jobs/{id})',
};

/**
 * A bull-board error body as application/problem+json, so the board's answers read like the rest
 * of the API's (and count by code in /metrics). `error` stays: the board's UI reads its key.
 */
function asProblem(status: number, body: BoardError, instance: string) {
  const { key, options = {} } = body.error;
  const name = key.replace(/^ERRORS\./, '');
  const title = name.charAt(0) + name.slice(1).toLowerCase().replaceAll('_', ' ');
  const { field, ...rest } = options;
  const where: FieldError['in'] = name === 'INVALID_REQUEST_BODY' ? 'body' : 'query';
  const errors = typeof field === 'string' ? [{ pointer: `/${field.split('.').join('/')}`, in: where, detail: 'is not valid' }] : undefined;
  const detail = errors
    ? `${where} ${errors[0].pointer} is not valid`
    : (DETAILS[name] ?? (Object.keys(rest).length > 0 ? `${title}: ${JSON.stringify(rest)}` : title));
  return { ...problemBody({ status, slug: name.toLowerCase(), title, detail, ...(errors ? { errors } : {}) }, instance), error: body.error };
}

/**
 * The board shows every tenant's task data. Tasks no longer carry the spec's webhook (see
 * TrainingQueue.enqueue), but entries an earlier version queued may still hold one with its
 * secret: the board leaves it out.
 */
function withoutWebhook(task: TrainingTask & { spec?: { webhook?: unknown } }): TrainingTask {
  if (task?.spec?.webhook === undefined) return task;
  const { webhook: _secretBearing, ...spec } = task.spec;
  return { ...task, spec };
}

/**
 * bull-board at /admin/queues: the training and webhook queues as BullMQ holds them in Redis.
 * Read-only, because retrying, promoting or cleaning a BullMQ job bypasses the store's state
 * machine (the jobs table is the truth, BullMQ the transport): a job retried there would run
 * while the store says it failed. Auth for /admin is in auth.ts; its routes are hidden from OpenAPI.
 */
export async function queueBoardPlugin(app: FastifyInstance) {
  const training = new BullMQAdapter(app.deps.queue.queue, {
    readOnlyMode: true,
    displayName: 'training',
    description: 'training jobs waiting for, or held by, a worker host',
  });
  training.setFormatter('data', withoutWebhook);
  const webhooks = new BullMQAdapter(app.deps.webhooks.queue, {
    readOnlyMode: true,
    displayName: 'webhooks',
    description: 'deliveries of job-ended callbacks, retried with backoff',
  });
  const board = new FastifyAdapter();
  createBullBoard({
    queues: [training, webhooks],
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'tfjs-adapt queues', miscLinks: [{ text: 'Dashboard', url: '/' }] } },
  });
  // bull-board's own handler would answer every thrown error (auth's 401 and 403 included) as a
  // 500 of its own shape; thrown on, they reach the app's problem+json handler instead. What
  // its handlers throw while the connection is down is Redis being away: a 503, as elsewhere.
  board.setErrorHandler((err) => {
    if (err instanceof HttpProblem || (err as FastifyError).statusCode || app.deps.redis.status === 'ready') throw err;
    app.log.warn({ err: err.message }, 'queue board: Redis did not answer');
    throw new HttpProblem(503, 'queue_unavailable', 'Queue unavailable', 'the queues (Redis) are not reachable; the board shows them again when Redis is back');
  });
  app.addHook('preSerialization', async (req, reply, payload) => {
    if (reply.statusCode < 400 || !isBoardError(payload)) return payload;
    reply.type('application/problem+json');
    return asProblem(reply.statusCode, payload, req.url);
  });
  await app.register(board.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
}
