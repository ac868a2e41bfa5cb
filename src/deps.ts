import type { ConversionLeases } from './artifacts/ingest/conversion-leases.js';
import type { Redis } from 'ioredis';
import type { Artifacts } from './artifacts/artifacts.js';
import type { Config } from './config.js';
import type { PredictPool } from './predict/pool.js';
import type { LiveEvents } from './queue/live-events.js';
import type { TrainingQueue } from './queue/training-queue.js';
import type { Store } from './store/store.js';
import type { WebhookQueue } from './webhooks/webhook-queue.js';

/** What the routes use, handed to buildApp so tests and server.ts wire the same parts. */
export interface AppDeps {
  config: Config;
  store: Store;
  queue: TrainingQueue;
  live: LiveEvents;
  /** for readiness checks */
  redis: Redis;
  artifacts: Artifacts;
  webhooks: WebhookQueue;
}

declare module 'fastify' {
  interface FastifyInstance {
    deps: AppDeps;
    /** the warm prediction children (src/predict/pool.ts), one pool per app, closed with it */
    predictions: PredictPool;
    /** the leases of this process's dataset conversions and model imports (src/artifacts/ingest/conversion-leases.ts) */
    leases: ConversionLeases;
  }
}
