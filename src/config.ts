import { isAbsolute, join, resolve } from 'node:path';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  artifactsDir: string;
  /** unset: the embedded default starts its own redis-server in dataDir */
  redisUrl?: string;
  /** unset: embedded PGlite in dataDir */
  databaseUrl?: string;
  workerConcurrency: number;
  /** how many times a job is started before it fails for good (transient errors only) */
  jobAttempts: number;
  bodyLimitBytes: number;
  logLevel: string;
}

export class ConfigError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected an integer from ${min} to ${max}`);
  }
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = resolve(env.DATA_DIR || './data');
  const artifacts = env.ARTIFACTS_DIR || join(dataDir, 'artifacts');
  const level = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) {
    throw new ConfigError(`LOG_LEVEL=${JSON.stringify(level)} is not valid: expected fatal, error, warn, info, debug, trace or silent`);
  }
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: env.HOST || '127.0.0.1',
    dataDir,
    artifactsDir: isAbsolute(artifacts) ? artifacts : resolve(artifacts),
    redisUrl: env.REDIS_URL || undefined,
    databaseUrl: env.DATABASE_URL || undefined,
    workerConcurrency: integer(env, 'WORKER_CONCURRENCY', 1, 1, 64),
    jobAttempts: integer(env, 'JOB_ATTEMPTS', 3, 1, 100),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 1024 * 1024, 1024, 1024 ** 3),
    logLevel: level,
  };
}
