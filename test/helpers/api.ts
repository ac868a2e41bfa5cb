/**
 * The API alone, for tests of HTTP behaviour that need no worker: buildApp on a real
 * redis-server and PGlite in a fresh temp dir (data-dir.ts), no worker host and no training child, so jobs it
 * accepts stay queued. `request` answers through fastify's inject and has the harness's shape,
 * so a test moves between the two by changing its start call; `url` (loopback) is for clients
 * that need a socket.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp, type App } from '../../src/app.js';
import type { AppDeps } from '../../src/deps.js';
import { openArtifacts } from '../../src/artifacts/artifacts.js';
import { loadConfig } from '../../src/config.js';
import { LiveEvents } from '../../src/queue/live-events.js';
import { createRedis, startRedisServer, type RedisServer } from '../../src/queue/redis-server.js';
import { TrainingQueue } from '../../src/queue/training-queue.js';
import { openStore } from '../../src/store/store.js';
import { WebhookQueue } from '../../src/webhooks/webhook-queue.js';
import { freshDataDir } from './data-dir.js';
import { SERVICE_ENV } from './service-env.js';

export interface Api {
  app: App;
  url: string;
  /** the parts the routes use: store, queue, live events, artifacts, config */
  deps: AppDeps;
  dataDir: string;
  redis: RedisServer;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; body: any }>;
  stop(): Promise<void>;
}

/** `dataDir` starts it on data a test prepared (as a restart would find it); it is removed on stop like a fresh one. */
export async function startApi(env: Record<string, string> = {}, opts: { dataDir?: string } = {}): Promise<Api> {
  const dataDir = opts.dataDir ?? (await freshDataDir('tfjs-adapt-api-'));
  const redis = await startRedisServer(join(dataDir, 'redis'));
  const config = loadConfig({ DATA_DIR: dataDir, PORT: '0', REDIS_URL: redis.url, LOG_LEVEL: 'silent', ...SERVICE_ENV, ...env });
  const store = await openStore({ dataDir });
  const client = createRedis(redis.url, { maxRetriesPerRequest: 2 });
  const sub = createRedis(redis.url, { maxRetriesPerRequest: null });
  const live = await LiveEvents.connect(client, sub);
  const queue = new TrainingQueue(client, { attempts: config.jobAttempts, backoffMs: config.jobBackoffMs });
  const webhooks = new WebhookQueue(client);
  const deps: AppDeps = { config, store, queue, live, redis: client, artifacts: openArtifacts(config), webhooks };
  const app = await buildApp(deps);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    url,
    deps,
    dataDir,
    redis,
    async request(method, path, body, headers = {}) {
      const res = await app.inject({
        method: method as 'GET',
        url: path,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      let parsed: unknown = res.body;
      try {
        parsed = res.body ? JSON.parse(res.body) : null;
      } catch {
        // not JSON: hand back the text
      }
      const answered = new Headers();
      for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? []].flat()) answered.append(name, String(v));
      return { status: res.statusCode, headers: answered, body: parsed };
    },
    async stop() {
      await app.close();
      await webhooks.close();
      await queue.close();
      client.disconnect();
      sub.disconnect();
      await store.close();
      deps.artifacts.close();
      await redis.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
