import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { completeDocument } from '../openapi/document.js';

/** The OpenAPI document is generated from the routes' TypeBox schemas: /openapi.json, UI at /docs. */
export const openapiPlugin = fp(async (app: FastifyInstance) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'tfjs-adapt',
        version: '1',
        description:
          'Transfer-learning and domain-adaptation training jobs on TensorFlow.js. Errors are application/problem+json ' +
          '(type, title, status, detail, and for validation `errors` with a JSON pointer to each offending field).',
      },
      tags: [
        { name: 'jobs', description: 'training jobs, their events and checkpoints' },
        { name: 'sweeps', description: 'searches over job specs: trials (each a job), the best trial and why, events' },
        { name: 'datasets', description: 'training and evaluation data' },
        { name: 'models', description: 'trained and uploaded models, downloadable for tf.loadLayersModel' },
        { name: 'service', description: 'health, readiness, metrics' },
      ],
    },
    transformObject: (doc) => ('openapiObject' in doc ? completeDocument(doc.openapiObject) : doc.swaggerObject),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
});
