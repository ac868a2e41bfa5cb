import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { expectedBackend } from '../backend.js';

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
      const within = <T>(p: Promise<T>) => Promise.race([p, new Promise((_, fail) => setTimeout(() => fail(new Error('timed out after 2 s')), 2000))]);
      const checks: Record<string, string> = {};
      await Promise.all([
        within(redis.ping()).then(() => (checks.redis = 'ok'), (e: Error) => (checks.redis = e.message)),
        within(store.db.query('SELECT 1')).then(() => (checks.store = 'ok'), (e: Error) => (checks.store = e.message)),
      ]);
      const ok = Object.values(checks).every((c) => c === 'ok');
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', checks });
    },
  });
};

export default routes;
