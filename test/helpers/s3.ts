/**
 * A real S3 server for tests: s3rver (S3's REST API over a directory) on a free loopback port,
 * with one bucket. `stop` and `start` take it away and bring it back on the same port and
 * data, as an object-store outage would. `env` is what a process needs to use it
 * (ARTIFACTS_URL and the AWS SDK's credentials, which s3rver checks: S3RVER/S3RVER).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { freePort } from '../../src/queue/redis-server.js';
import { startHarness, type Harness } from './harness.js';

export const BUCKET = 'tfjs-adapt';
const PREFIX = 'artifacts';

export interface S3Server {
  env: Record<string, string>;
  /** keys under the prefix (without it), e.g. datasets/ds_x/features.bin */
  keys(under?: string): Promise<string[]>;
  /** the object `key` (under the prefix, as keys() names it) as text */
  text(key: string): Promise<string>;
  /** the object `key` (under the prefix, as keys() names it) as bytes */
  bytes(key: string): Promise<Uint8Array>;
  /** writes the object `key` (under the prefix) as it is, as a store that damaged it would hold it */
  put(key: string, body: string | Uint8Array): Promise<void>;
  /** deletes the object `key` (under the prefix) alone */
  remove(key: string): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stops it and removes its data */
  destroy(): Promise<void>;
}

export async function startS3(): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-s3-'));
  const port = await freePort();
  let server: S3rver | undefined;
  /** set while the store goes away: requests that come then get a 503, as a store in an outage answers */
  let stopping = false;
  const httpServerOf = (s: S3rver) => (s as unknown as { httpServer: Server }).httpServer;
  const start = async () => {
    server = new S3rver({ port, address: '127.0.0.1', directory: dir, silent: true, configureBuckets: [{ name: BUCKET, configs: [] }] });
    await server.run();
    stopping = false;
    const http = httpServerOf(server);
    const handlers = http.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    http.removeAllListeners('request');
    http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!stopping) return handlers.forEach((h) => h.call(http, req, res));
      res.writeHead(503, { connection: 'close' }).end();
    });
  };
  // An outage takes the store away at once. close() alone waits for open keep-alive connections,
  // over which a host went on uploading a fast job's checkpoints for 36 s; dropping them instead
  // made s3rver keep the part of an object whose upload was cut, which S3 never does. So requests
  // under way finish, any later one is a 503 that closes its connection, and idle ones close now.
  const stop = async () => {
    const running = server;
    server = undefined;
    if (running === undefined) return;
    stopping = true;
    const closed = running.close();
    httpServerOf(running).closeIdleConnections();
    await closed;
  };
  await start();
  const env = {
    ARTIFACTS_URL: `s3://${BUCKET}/${PREFIX}`,
    S3_ENDPOINT: `http://127.0.0.1:${port}`,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  };
  const client = new S3Client({
    region: env.AWS_REGION,
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  return {
    env,
    async keys(under = '') {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}/${under}`, ...(token ? { ContinuationToken: token } : {}) }),
        );
        keys.push(...(page.Contents ?? []).map((o) => o.Key!.slice(PREFIX.length + 1)));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async text(key) {
      return (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${key}` }))).Body!.transformToString();
    },
    async bytes(key) {
      return (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${key}` }))).Body!.transformToByteArray();
    },
    async put(key, body) {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${key}`, Body: body }));
    },
    async remove(key) {
      await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${key}` }));
    },
    stop,
    start,
    async destroy() {
      await stop();
      client.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** s3rver and the whole service keeping its artifacts there (startHarness); `env` adds to the harness's settings. */
export async function startS3Harness(env: Record<string, string> = {}): Promise<{ s3: S3Server; h: Harness; stop: () => Promise<void> }> {
  const s3 = await startS3();
  // the AWS SDK takes its credentials from the environment (its default chain)
  Object.assign(process.env, s3.env);
  try {
    const h = await startHarness({ ...s3.env, ...env });
    return {
      s3,
      h,
      stop: async () => {
        await h.stop();
        await s3.destroy();
      },
    };
  } catch (err) {
    await s3.destroy();
    throw err;
  }
}
