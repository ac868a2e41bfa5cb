/**
 * Starts the service. `node dist/src/server.js` (npm start) is the embedded default: API and
 * worker host in one process, PGlite in DATA_DIR and a private redis-server unless
 * REDIS_URL is set. `... server.js api` and `... server.js worker` run the two halves
 * separately against REDIS_URL and DATABASE_URL, for scale.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { openArtifacts } from './artifacts/artifacts.js';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { LiveEvents } from './queue/live-events.js';
import { createRedis, logConnectionErrors, RedisServerMissing, startRedisServer, type RedisServer } from './queue/redis-server.js';
import { TrainingQueue } from './queue/training-queue.js';
import { openStore } from './store/store.js';
import { SweepLauncher } from './sweeps/launcher.js';
import { reconcile } from '../workers/host/reconcile.js';
import { WebhookDeliverer } from '../workers/host/webhook-deliverer.js';
import { WorkerHost } from '../workers/host/worker-host.js';
import { WebhookQueue } from './webhooks/webhook-queue.js';

export type Mode = 'all' | 'api' | 'worker';

export interface Service {
  url?: string;
  stop(): Promise<void>;
}

export async function startService(config: Config, mode: Mode, log: Logger): Promise<Service> {
  if (mode !== 'all' && (!config.redisUrl || !config.databaseUrl)) {
    throw new ConfigError(
      `"${mode}" mode runs beside other processes and needs shared services: set REDIS_URL and DATABASE_URL (PGlite and the private redis-server serve one process only)`,
    );
  }
  const stops: Array<() => Promise<unknown>> = [];
  // each part gets a bounded time: with Redis or Postgres gone, a close could wait forever
  const stop = async () => {
    for (const s of stops.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((ok) => (timer = setTimeout(() => ok(log.warn('a part did not stop within 15 s; going on')), 15_000)));
      await Promise.race([s().catch((err) => log.warn({ err }, 'error while stopping')), late]);
      clearTimeout(timer);
    }
  };
  try {
    let redisUrl = config.redisUrl;
    if (!redisUrl) {
      const server: RedisServer = await startRedisServer(join(config.dataDir, 'redis'));
      stops.push(() => server.stop());
      redisUrl = server.url;
      log.info({ redis: redisUrl }, 'started a private redis-server');
    }
    const store = await openStore({ dataDir: config.dataDir, ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) });
    stops.push(() => store.close());
    const artifacts = openArtifacts(config);
    stops.push(async () => artifacts.close());
    // producers fail fast when Redis is away (the API answers 503); BullMQ's blocking worker needs retries unbounded
    const redis = createRedis(redisUrl, { maxRetriesPerRequest: 2 });
    const sub = createRedis(redisUrl, { maxRetriesPerRequest: null });
    logConnectionErrors(redis, log, 'api');
    logConnectionErrors(sub, log, 'subscriber');
    stops.push(
      async () => void redis.disconnect(),
      async () => void sub.disconnect(),
    );
    const live = await LiveEvents.connect(redis, sub);
    const queue = new TrainingQueue(redis, { attempts: config.jobAttempts, backoffMs: config.jobBackoffMs });
    logConnectionErrors(queue.queue, log, 'queue');
    const webhooks = new WebhookQueue(redis);
    logConnectionErrors(webhooks.queue, log, 'webhook queue');
    stops.push(() => webhooks.close());
    stops.push(() => queue.close());

    if (mode !== 'api') {
      const workerConnection = createRedis(redisUrl, { maxRetriesPerRequest: null });
      logConnectionErrors(workerConnection, log, 'worker');
      stops.push(async () => void workerConnection.disconnect());
      const sweeps = new SweepLauncher({
        store,
        live,
        queue,
        webhooks,
        artifacts,
        log: log.child({ part: 'sweeps' }),
        maxActiveJobs: config.maxActiveJobsPerTenant,
        webhookAllowedHosts: config.webhookAllowedHosts,
      });
      const host = new WorkerHost({
        connection: workerConnection,
        store,
        live,
        queue,
        webhooks,
        artifacts,
        log: log.child({ part: 'worker' }),
        concurrency: config.workerConcurrency,
        trainingThreads: config.trainingThreads,
        lockDurationMs: config.lockDurationMs,
        limits: {
          maxMemoryBytes: config.trainingChildMaxMemoryBytes,
          stopGraceMs: config.stopGraceMs,
          defaultMaxRuntimeSeconds: config.jobDefaultMaxRuntimeSeconds,
          maxRuntimeSeconds: config.jobMaxRuntimeSeconds,
        },
        maxRunningPerTenant: config.maxRunningJobsPerTenant,
        sweeps,
      });
      stops.push(() => host.close());
      const deliverer = new WebhookDeliverer({
        connection: workerConnection,
        store,
        live,
        log: log.child({ part: 'webhooks' }),
        allowedHosts: config.webhookAllowedHosts,
      });
      stops.push(() => deliverer.close());
      const reconcileNow = () =>
        reconcile({
          store,
          queue,
          artifacts,
          live,
          log,
          host,
          sweeps,
          settleAfterMs: config.lockDurationMs,
          webhookAllowedHosts: config.webhookAllowedHosts,
        }).catch((err) => log.warn({ err: (err as Error).message }, 'reconciliation failed; will try again'));
      await reconcileNow();
      // also later: jobs accepted while Redis was away, or lost with it, are queued once it is back
      const timer = setInterval(() => void reconcileNow(), config.reconcileIntervalMs);
      stops.push(async () => clearInterval(timer));
      log.info({ concurrency: config.workerConcurrency }, 'worker host started');
    }
    if (mode === 'worker') return { stop };

    const app = await buildApp({ config, store, queue, live, redis, artifacts, webhooks }, { logger: log });
    stops.push(() => app.close());
    const url = await app.listen({ port: config.port, host: config.host });
    if (config.apiKeys.length === 0) log.warn({ host: config.host }, 'API_KEYS is unset: the API is open to anyone who can reach this loopback address');
    return { url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main() {
  const mode = (process.argv[2] ?? 'all') as Mode;
  let config: Config;
  try {
    if (!['all', 'api', 'worker'].includes(mode)) throw new ConfigError(`unknown mode ${JSON.stringify(mode)}: expected all, api or worker`);
    config = loadConfig();
  } catch (err) {
    console.error(`tfjs-adapt: ${(err as Error).message}`);
    process.exit(2);
  }
  const log = pino({ level: config.logLevel });
  // installed before starting, so a signal during start-up still stops what was started
  let signalled = false;
  let service: Service | undefined;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'shutting down');
    service?.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    service = await startService(config, mode, log);
  } catch (err) {
    if (err instanceof RedisServerMissing || err instanceof ConfigError) {
      console.error(`tfjs-adapt: ${err.message}`);
      process.exit(2);
    }
    log.fatal({ err }, 'could not start');
    process.exit(1);
  }
  if (signalled) {
    await service.stop();
    process.exit(0);
  }
  log.info({ mode, url: service.url, dataDir: config.dataDir }, 'tfjs-adapt is up');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
