import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { expectedBackend } from '../backend.js';
import { withTimeout } from '../timeout.js';

/** how long readiness waits for Redis and the store (its description says 2 s) */
const READY_TIMEOUT_MS = 2000;

const Check = Type.Union([Type.Literal('ok'), Type.Literal('down')]);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, redis } = app.deps;
  const tags = ['service'];

  app.get('/health', {
    schema: {
      tags,
      summary: 'Liveness, and the tfjs backend training runs on',
      description:
        'The API never loads TensorFlow.js; `backend` is what training children pick by the same rule (TFJS_BACKEND, else tensorflow when @tensorflow/tfjs-node is installed, else wasm, else cpu). Each job reports the backend that actually ran it.',
      response: {
        200: Type.Object({
          status: Type.Literal('ok'),
          backend: Type.String(),
          backendOverride: Type.Union([Type.String(), Type.Null()]),
          store: Type.String(),
        }),
      },
    },
    handler: async () => ({ status: 'ok' as const, backend: expectedBackend(), backendOverride: process.env.TFJS_BACKEND || null, store: store.db.kind }),
  });

  const Readiness = Type.Object({
    status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
    checks: Type.Object({ redis: Check, store: Check }),
  });
  app.get('/ready', {
    schema: {
      tags,
      summary: 'Readiness: Redis and the store answer',
      description:
        'Answers 200 when both answer within 2 s, else 503; `checks` says which component is `down`. Why it is down goes to the ' +
        'log, not to the answer: this route is open to anyone who can reach it. Meant for load balancers and orchestrators.',
      response: { 200: Readiness, 503: Readiness },
    },
    handler: async (req, reply) => {
      const probe = (component: 'redis' | 'store', p: Promise<unknown>): Promise<'ok' | 'down'> =>
        withTimeout(p, { ms: READY_TIMEOUT_MS, what: component === 'redis' ? 'PING' : 'SELECT 1' }).then(
          () => 'ok' as const,
          (err: unknown) => {
            req.log.warn({ err, component }, 'readiness check failed');
            return 'down' as const;
          },
        );
      const [redisCheck, storeCheck] = await Promise.all([probe('redis', redis.ping()), probe('store', store.db.query('SELECT 1'))]);
      const ok = redisCheck === 'ok' && storeCheck === 'ok';
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', checks: { redis: redisCheck, store: storeCheck } });
    },
  });
};

export default routes;
