import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
// loaded with require: an ES import makes Node scan its CommonJS files for export names first (why: eslint.config.js)
import ioredis = require('ioredis');
import type { Redis } from 'ioredis';

export class RedisServerMissing extends Error {
  constructor() {
    super(
      'redis-server was not found on PATH and REDIS_URL is not set. Install Redis ' +
        '(Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis) ' +
        'or set REDIS_URL=redis://host:6379 to use a running server.',
    );
  }
}

export interface RedisServer {
  url: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

/**
 * Starts a private redis-server with its data in `dir`: AOF on (accepted jobs survive a
 * restart) and `noeviction` (BullMQ's keys must never be evicted). It listens on a unix
 * socket inside `dir` when the path is short enough for one, else on a free loopback
 * port, so two instances with different data dirs never collide.
 */
export async function startRedisServer(dir: string, opts: { port?: number } = {}): Promise<RedisServer> {
  if (spawnSync('redis-server', ['--version']).error) throw new RedisServerMissing();
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'redis.sock');
  const useSocket = opts.port === undefined && Buffer.byteLength(socket) < 100;
  const port = useSocket ? 0 : (opts.port ?? (await freePort()));
  const args = [
    '--dir',
    dir,
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--maxmemory-policy',
    'noeviction',
    '--save',
    '',
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
    '--logfile',
    join(dir, 'redis.log'),
    ...(useSocket ? ['--unixsocket', socket, '--unixsocketperm', '700'] : []),
  ];
  const url = useSocket ? `redis+socket://${socket}` : `redis://127.0.0.1:${port}`;
  const leftover = await adopt(url);
  if (leftover) return leftover;
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  let exited: string | null = null;
  child.once('exit', (code, sig) => (exited = `redis-server exited (${code ?? sig}); see ${join(dir, 'redis.log')}`));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error(exited);
    const probe = createRedis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    // refusals are expected until the server listens; connect() below reports them
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not answer within 10 s; see ${join(dir, 'redis.log')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    stop: () =>
      new Promise<void>((ok) => {
        if (child.exitCode !== null || child.signalCode !== null) return ok();
        child.once('exit', () => ok());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * A private redis-server still answering on our socket was left by a run of this data
 * dir that did not stop cleanly (killed): take it over rather than fail, and stop it with
 * SHUTDOWN (which writes its AOF) when we stop.
 */
async function adopt(url: string): Promise<RedisServer | null> {
  if (!url.startsWith('redis+socket://') || !existsSync(url.slice('redis+socket://'.length))) return null;
  const client = createRedis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch {
    client.disconnect();
    return null;
  }
  return {
    url,
    stop: async () => {
      await client.shutdown().catch(() => undefined);
      client.disconnect();
    },
  };
}

/** ioredis client for a `redis://`, `rediss://` or `redis+socket:///path` URL. */
export function createRedis(url: string, opts: import('ioredis').RedisOptions = {}): Redis {
  if (url.startsWith('redis+socket://')) return new ioredis.Redis({ path: url.slice('redis+socket://'.length), ...opts });
  return new ioredis.Redis(url, opts);
}

/**
 * Routes a Redis client's connection errors to the log, once per distinct message every
 * 10 s: while Redis is away ioredis retries many times a second, and unhandled they
 * would be printed raw to stderr.
 */
export function logConnectionErrors(
  emitter: { on(event: 'error', fn: (err: Error) => void): unknown },
  log: { warn(obj: object, msg: string): void },
  name: string,
): void {
  const lastLogged = new Map<string, number>();
  emitter.on('error', (err: Error) => {
    const now = Date.now();
    if (now - (lastLogged.get(err.message) ?? 0) < 10_000) return;
    lastLogged.set(err.message, now);
    log.warn({ connection: name, err: err.message }, 'redis connection error');
  });
}
