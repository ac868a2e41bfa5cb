import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { expectedBackend } from '../backend.js';
import { withTimeout } from '../timeout.js';

/** how long readiness waits for Redis and the store (its description says 2 s) */
const READY_TIMEOUT_MS = 2000;

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, redis } = app.deps;
  const tags = ['service'];

  app.get('/health', {
    schema: {
      tags,
      summary: 'Liveness, and the tfjs backend training runs on',
      description: 'The API never loads TensorFlow.js; `backend` is what training children pick by the same rule (TFJS_BACKEND, else tensorflow when @tensorflow/tfjs-node is installed, else wasm, else cpu). Each job reports the backend that actually ran it.',
      response: { 200: Type.Object({ status: Type.Literal('ok'), backend: Type.String(), backendOverride: Type.Union([Type.String(), Type.Null()]), store: Type.String() }) },
    },
    handler: async () => ({ status: 'ok' as const, backend: expectedBackend(), backendOverride: process.env.TFJS_BACKEND || null, store: store.db.kind }),
  });

  app.get('/ready', {
    schema: {
      tags,
      summary: 'Readiness: Redis and the store answer',
      description: 'Answers 200 when both answer within 2 s, else 503; `checks` says which failed and why. Meant for load balancers and orchestrators.',
      response: {
        200: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }),
        503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }),
      },
    },
    handler: async (_req, reply) => {
      const checks: Record<string, string> = {};
      await Promise.all([
        withTimeout(redis.ping(), { ms: READY_TIMEOUT_MS, what: 'PING' }).then(() => (checks.redis = 'ok'), (e: Error) => (checks.redis = e.message)),
        withTimeout(store.db.query('SELECT 1'), { ms: READY_TIMEOUT_MS, what: 'SELECT 1' }).then(() => (checks.store = 'ok'), (e: Error) => (checks.store = e.message)),
      ]);
      const ok = Object.values(checks).every((c) => c === 'ok');
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', checks });
    },
  });
};

export default routes;
