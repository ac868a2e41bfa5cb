import { isAbsolute, join, resolve } from 'node:path';
import type { ObjectStoreOptions } from './artifacts/object-store.js';
import { MAX_TRAINING_THREADS, shareOfCores } from './jobs/training-threads.js';
import { parseApiKeys, type ApiKey } from './plugins/auth.js';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  artifactsDir: string;
  /** ARTIFACTS_URL=s3://bucket/prefix (with S3_ENDPOINT, S3_FORCE_PATH_STYLE, AWS_REGION): the object store that holds artifacts; null: artifactsDir does */
  objectStore: ObjectStoreOptions | null;
  /** with an object store, the bytes of local copies (datasets, models, checkpoints) one process keeps in artifactsDir */
  artifactsCacheMaxBytes: number;
  /** unset: the embedded default starts its own redis-server in dataDir */
  redisUrl?: string;
  /** unset: embedded PGlite in dataDir */
  databaseUrl?: string;
  workerConcurrency: number;
  /** XNNPACK threads of each training child on wasm; default: the cores shared out among workerConcurrency children */
  trainingThreads: number;
  /** how many times a job is started before it fails for good (transient errors only) */
  jobAttempts: number;
  bodyLimitBytes: number;
  /** where compiled request validators and reply serializers are kept for the next start (src/plugins/compiled-code.ts); null: none kept */
  compiledCodeDir: string | null;
  /** first retry delay of a failed attempt; doubles each time */
  jobBackoffMs: number;
  /** how long a worker's hold on a job lasts unrenewed: a dead worker's job is taken over after about this long */
  lockDurationMs: number;
  /** how often the worker side checks that every unfinished job is in the queue */
  reconcileIntervalMs: number;
  /** the most one upload (dataset or model, all files together) may carry; beyond it the answer is 413 */
  uploadLimitBytes: number;
  /** how long an upload's body may send nothing before it is refused (408) and its connection closed */
  uploadIdleTimeoutSeconds: number;
  /** the lowest average rate an upload may keep once it has run uploadRateGraceSeconds; slower is a 408 and its connection closed. 0: none */
  uploadMinBytesPerSecond: number;
  /** how long an upload runs before uploadMinBytesPerSecond applies to its average */
  uploadRateGraceSeconds: number;
  /** dataset conversions running at once, each in its own worker thread */
  ingestConcurrency: number;
  /** the largest converted dataset (features + labels on disk); a conversion that would exceed it is refused */
  datasetMaxBytes: number;
  /** the largest image area (height x width) an image upload may be resized to or decode to */
  imageMaxPixels: number;
  /** V8 heap of one conversion thread or model check child, in MiB; crossing it fails that conversion as resource_exhausted */
  ingestMaxHeapMb: number;
  /** model uploads checked (loaded with TensorFlow.js in a child) at once; more is a 503 */
  modelCheckConcurrency: number;
  /** bytes one tenant may keep in datasets, models, checkpoints and prediction files; 0: unlimited */
  tenantStorageQuotaBytes: number;
  logLevel: string;
  /** tenants and their bearer tokens (API_KEYS); empty: the API is open and listens on loopback only */
  apiKeys: ApiKey[];
  /** tenants of API_KEYS allowed into /admin (ADMIN_TENANTS), which shows every tenant's jobs; empty with keys set: nobody */
  adminTenants: string[];
  /** queued, running and paused jobs one tenant may have; more is a 429 */
  maxActiveJobsPerTenant: number;
  /** running jobs one tenant may have across all worker hosts; 0: no cap. A job beyond it waits in the queue */
  maxRunningJobsPerTenant: number;
  /** a job whose estimated peak memory in the training child is higher is refused (400) */
  jobMaxMemoryBytes: number;
  /** a job whose estimated floating-point operations (all epochs) are more is refused (400) */
  jobMaxFlops: number;
  /** a sweep whose trials' estimated floating-point operations add up to more is refused (400) */
  sweepMaxFlops: number;
  /** requests per minute per tenant on guarded routes (/v1, /admin, /metrics); 0: unlimited */
  rateLimitPerMinute: number;
  /** requests per minute per client IP on guarded routes without valid credentials (401s included); 0: unlimited */
  rateLimitAnonymousPerMinute: number;
  /** server-sent event streams one tenant may hold open at once, per API process; more is a 429 */
  maxSseStreamsPerTenant: number;
  /** `host` or `host:port` entries that webhooks may call although they are loopback or private */
  webhookAllowedHosts: string[];
  /** `host` or `host:port` entries a model import (`source.url`) may fetch from although they are loopback or private */
  modelImportAllowedHosts: string[];
  /** resident memory one training child may use; past it the child is killed and the job fails resource_exhausted */
  trainingChildMaxMemoryBytes: number;
  /** how long a training child asked to stop (cancel, pause, shutdown, runtime limit) may take before it is killed */
  stopGraceMs: number;
  /** limits.maxRuntimeSeconds of a job whose spec sets none */
  jobDefaultMaxRuntimeSeconds: number;
  /** the highest limits.maxRuntimeSeconds a spec may ask for; no attempt runs longer */
  jobMaxRuntimeSeconds: number;
  /** POST /v1/models/{id}/predict: its pool of children and its bounds */
  predict: PredictConfig;
}

export interface PredictConfig {
  /** warm prediction children (each loads TensorFlow.js once and keeps models) */
  children: number;
  /** V8 heap of one prediction child, in MiB */
  maxHeapMb: number;
  /** models one child keeps loaded, least recently used dropped first */
  cacheModels: number;
  /** weight bytes one child keeps loaded */
  cacheBytes: number;
  /** examples (JSON) or images (multipart) in one request */
  maxExamples: number;
  /** the largest request body (JSON or multipart); more is a 413 */
  maxBodyBytes: number;
  /** predictions one tenant may have in flight at once; more is a 429 */
  tenantConcurrency: number;
  /** predictions in flight in the whole pool; more is a 503 */
  queueMax: number;
  /** how long one prediction may take in its child; past it the child is replaced and the answer is a 503 */
  timeoutMs: number;
}

export class ConfigError extends Error {}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected an integer from ${min} to ${max}`);
  }
  return n;
}

/** ARTIFACTS_URL and the settings of its S3 client; null when it is unset. */
function objectStore(env: NodeJS.ProcessEnv): ObjectStoreOptions | null {
  const raw = env.ARTIFACTS_URL;
  if (raw === undefined || raw === '') return null;
  // bucket names: 3-63 lower-case letters, digits, dots and hyphens (S3's rules)
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(raw);
  if (!m)
    throw new ConfigError(
      `ARTIFACTS_URL=${JSON.stringify(raw)} is not valid: expected s3://bucket or s3://bucket/prefix (a bucket name of 3-63 lower-case letters, digits, dots and hyphens)`,
    );
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  const endpoint = env.S3_ENDPOINT || undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new ConfigError(`S3_ENDPOINT=${JSON.stringify(endpoint)} is not valid: expected an http:// or https:// URL such as http://minio:9000`);
  }
  const pathStyle = env.S3_FORCE_PATH_STYLE || 'false';
  if (pathStyle !== 'true' && pathStyle !== 'false')
    throw new ConfigError(`S3_FORCE_PATH_STYLE=${JSON.stringify(pathStyle)} is not valid: expected true or false`);
  return { bucket: m[1], prefix, ...(endpoint ? { endpoint } : {}), forcePathStyle: pathStyle === 'true', region: env.AWS_REGION || 'us-east-1' };
}

/** ADMIN_TENANTS: comma-separated tenant names, each one of API_KEYS, so a typo cannot lock admins out unnoticed. */
function adminTenants(raw: string | undefined, keys: ApiKey[]): string[] {
  const names = (raw ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (names.length === 0) return [];
  if (keys.length === 0) {
    throw new ConfigError(
      `ADMIN_TENANTS=${JSON.stringify(raw)} is set but API_KEYS is not: without keys the service is open (loopback only) and /admin needs no login; set API_KEYS=tenant:token,... or unset ADMIN_TENANTS`,
    );
  }
  const known = new Set(keys.map((k) => k.tenant));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new ConfigError(
      `ADMIN_TENANTS names ${unknown.map((n) => JSON.stringify(n)).join(', ')}, not a tenant of API_KEYS: expected some of ${[...known].map((n) => JSON.stringify(n)).join(', ')}`,
    );
  }
  return [...new Set(names)];
}

/** COMPILED_CODE_DIR: a path, or `off` to compile at every start */
function compiledCodeDir(env: NodeJS.ProcessEnv, dataDir: string): string | null {
  const dir = env.COMPILED_CODE_DIR || join(dataDir, 'compiled-code');
  return dir === 'off' ? null : resolve(dir);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = resolve(env.DATA_DIR || './data');
  const artifacts = env.ARTIFACTS_DIR || join(dataDir, 'artifacts');
  const level = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) {
    throw new ConfigError(`LOG_LEVEL=${JSON.stringify(level)} is not valid: expected fatal, error, warn, info, debug, trace or silent`);
  }
  let apiKeys: ApiKey[];
  try {
    apiKeys = parseApiKeys(env.API_KEYS);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const host = env.HOST || '127.0.0.1';
  const workerConcurrency = integer(env, 'WORKER_CONCURRENCY', 1, 1, 64);
  if (apiKeys.length === 0 && !isLoopback(host)) {
    throw new ConfigError(
      `HOST=${host} is not a loopback address and API_KEYS is unset: refusing to serve an open API beyond this machine; set API_KEYS=tenant:token,... or HOST=127.0.0.1`,
    );
  }
  // the schema's own bound on limits.maxRuntimeSeconds is 30 days
  const jobMaxRuntimeSeconds = integer(env, 'JOB_MAX_RUNTIME_SECONDS', 7 * 24 * 3600, 1, 30 * 24 * 3600);
  const jobDefaultMaxRuntimeSeconds = integer(env, 'JOB_DEFAULT_MAX_RUNTIME_SECONDS', Math.min(24 * 3600, jobMaxRuntimeSeconds), 1, 30 * 24 * 3600);
  const trainingChildMaxMemoryBytes = integer(env, 'TRAINING_CHILD_MAX_MEMORY_BYTES', 4 * 1024 ** 3, 128 * 1024 ** 2, 1024 ** 4);
  if (jobDefaultMaxRuntimeSeconds > jobMaxRuntimeSeconds) {
    throw new ConfigError(
      `JOB_DEFAULT_MAX_RUNTIME_SECONDS=${jobDefaultMaxRuntimeSeconds} is above JOB_MAX_RUNTIME_SECONDS=${jobMaxRuntimeSeconds}: expected a default within the maximum`,
    );
  }
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host,
    dataDir,
    artifactsDir: isAbsolute(artifacts) ? artifacts : resolve(artifacts),
    objectStore: objectStore(env),
    artifactsCacheMaxBytes: integer(env, 'ARTIFACTS_CACHE_MAX_BYTES', 10 * 1024 ** 3, 0, 1024 ** 5),
    redisUrl: env.REDIS_URL || undefined,
    databaseUrl: env.DATABASE_URL || undefined,
    workerConcurrency,
    trainingThreads: integer(env, 'TRAINING_THREADS', shareOfCores(workerConcurrency), 1, MAX_TRAINING_THREADS),
    jobAttempts: integer(env, 'JOB_ATTEMPTS', 3, 1, 100),
    compiledCodeDir: compiledCodeDir(env, dataDir),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 1024 * 1024, 1024, 1024 ** 3),
    jobBackoffMs: integer(env, 'JOB_BACKOFF_MS', 2000, 0, 3600 * 1000),
    lockDurationMs: integer(env, 'LOCK_DURATION_MS', 30_000, 1000, 3600 * 1000),
    reconcileIntervalMs: integer(env, 'RECONCILE_INTERVAL_MS', 30_000, 100, 24 * 3600 * 1000),
    uploadLimitBytes: integer(env, 'UPLOAD_LIMIT_BYTES', 2 * 1024 ** 3, 1024, 1024 ** 4),
    uploadIdleTimeoutSeconds: integer(env, 'UPLOAD_IDLE_TIMEOUT_SECONDS', 30, 1, 3600),
    // 8 kbit/s, below any working link (Apache's mod_reqtimeout asks 500 bytes/s of a body by
    // default), so a legitimate client keeps it; one that trickles bytes to hold a model check
    // slot must spend this much bandwidth per slot for as long as it holds it
    uploadMinBytesPerSecond: integer(env, 'UPLOAD_MIN_BYTES_PER_SECOND', 1024, 0, 1024 ** 3),
    // as long as the idle timeout: a slow start (TCP, a client reading its file) is not judged
    uploadRateGraceSeconds: integer(env, 'UPLOAD_RATE_GRACE_SECONDS', 30, 1, 3600),
    ingestConcurrency: integer(env, 'INGEST_CONCURRENCY', 2, 1, 64),
    // as large as the default upload cap: the training child holds a dataset in memory, and the
    // wasm backend addresses 4 GiB at most, so a larger one could not be trained on anyway
    datasetMaxBytes: integer(env, 'DATASET_MAX_BYTES', 2 * 1024 ** 3, 1024, 1024 ** 4),
    imageMaxPixels: integer(env, 'IMAGE_MAX_PIXELS', 1024 * 1024, 1, 4096 * 4096),
    ingestMaxHeapMb: integer(env, 'INGEST_MAX_HEAP_MB', 512, 64, 65536),
    modelCheckConcurrency: integer(env, 'MODEL_CHECK_CONCURRENCY', 2, 1, 64),
    tenantStorageQuotaBytes: integer(env, 'TENANT_STORAGE_QUOTA_BYTES', 20 * 1024 ** 3, 0, 1024 ** 5),
    logLevel: level,
    apiKeys,
    adminTenants: adminTenants(env.ADMIN_TENANTS, apiKeys),
    maxActiveJobsPerTenant: integer(env, 'MAX_ACTIVE_JOBS_PER_TENANT', 100, 1, 1_000_000),
    // with several tenants, none may hold every worker slot; one tenant alone may use them all
    maxRunningJobsPerTenant: integer(env, 'MAX_RUNNING_JOBS_PER_TENANT', new Set(apiKeys.map((k) => k.tenant)).size > 1 ? 2 : 0, 0, 1_000_000),
    // half the training child's cap: the estimate counts tensors (0.86-1.02 of their measured peak),
    // the child also holds V8's heap, wasm code and buffers that come and go within a step
    jobMaxMemoryBytes: integer(env, 'JOB_MAX_MEMORY_BYTES', Math.floor(trainingChildMaxMemoryBytes / 2), 1024 ** 2, 1024 ** 5),
    // about a day of one wasm thread at some 10 GFLOP/s
    jobMaxFlops: integer(env, 'JOB_MAX_FLOPS', 1e15, 1e6, 1e21),
    // ten jobs at the job limit: a sweep is a batch of jobs, bounded as a whole
    sweepMaxFlops: integer(env, 'SWEEP_MAX_FLOPS', 1e16, 1e6, 1e22),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', apiKeys.length > 0 ? 1200 : 0, 0, 10_000_000),
    rateLimitAnonymousPerMinute: integer(env, 'RATE_LIMIT_ANONYMOUS_PER_MINUTE', 60, 0, 10_000_000),
    maxSseStreamsPerTenant: integer(env, 'MAX_SSE_STREAMS_PER_TENANT', 20, 1, 100_000),
    webhookAllowedHosts: hostList(env.WEBHOOK_ALLOWED_HOSTS),
    modelImportAllowedHosts: hostList(env.MODEL_IMPORT_ALLOWED_HOSTS),
    trainingChildMaxMemoryBytes,
    stopGraceMs: integer(env, 'STOP_GRACE_MS', 5000, 100, 60_000),
    jobDefaultMaxRuntimeSeconds,
    jobMaxRuntimeSeconds,
    predict: {
      children: integer(env, 'PREDICT_CHILDREN', 1, 1, 64),
      maxHeapMb: integer(env, 'PREDICT_MAX_HEAP_MB', 1024, 64, 65536),
      cacheModels: integer(env, 'PREDICT_CACHE_MODELS', 8, 1, 10_000),
      cacheBytes: integer(env, 'PREDICT_CACHE_BYTES', 512 * 1024 ** 2, 1024, 1024 ** 4),
      maxExamples: integer(env, 'PREDICT_MAX_EXAMPLES', 256, 1, 100_000),
      maxBodyBytes: integer(env, 'PREDICT_MAX_BODY_BYTES', 16 * 1024 ** 2, 1024, 1024 ** 3),
      tenantConcurrency: integer(env, 'PREDICT_TENANT_CONCURRENCY', 4, 1, 10_000),
      queueMax: integer(env, 'PREDICT_QUEUE_MAX', 64, 1, 100_000),
      timeoutMs: integer(env, 'PREDICT_TIMEOUT_MS', 30_000, 100, 3600 * 1000),
    },
  };
}

/** A comma-separated list of `host` or `host:port` entries, lower-cased. */
function hostList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
}
