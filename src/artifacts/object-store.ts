/**
 * The object store that holds artifacts when ARTIFACTS_URL=s3://bucket/prefix is set: one
 * artifact directory (a dataset, a model, one checkpoint) is a set of objects under one key
 * prefix, and a manifest object naming its files and their sizes. The manifest is written
 * last and read first: a directory without one is not there yet (or was half uploaded), so no
 * reader ever sees half of one. Files go up with lib-storage's Upload (multipart past 8 MiB,
 * read from disk as a stream); requests are signed by the AWS SDK, whose default chain finds
 * the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an instance role, ...).
 * The SDK is imported on first use: it costs about half a second of CPU at every start of a
 * process, which one without ARTIFACTS_URL (and every test of the API alone) need not pay.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';

const sdk = () => import('@aws-sdk/client-s3');

/** Named by the manifest; kept out of the files it lists. */
export const MANIFEST = '.manifest.json';

interface Manifest {
  files: { name: string; bytes: number }[];
}

export interface ObjectStoreOptions {
  bucket: string;
  /** key prefix of every artifact, without slashes at either end ('' for the bucket's root) */
  prefix: string;
  /** S3_ENDPOINT: MinIO, R2, GCS interop and the like; unset for AWS */
  endpoint?: string;
  /** S3_FORCE_PATH_STYLE: bucket in the path rather than the host name */
  forcePathStyle: boolean;
  region: string;
}

/** A directory that has no complete copy in the store. */
export class NotInObjectStore extends Error {}

/** The store did not answer, or answered with a server error: worth retrying later (the API answers 503). */
export class ObjectStoreUnavailable extends Error {}

/**
 * A directory the store holds damaged: its manifest does not parse, or a file it lists is missing
 * or of another size. Not worth retrying: the store would give the same bytes again.
 */
export class DamagedInObjectStore extends Error {}

/** Network failures (no HTTP status) and 5xx answers are the store being away; anything else is passed on as it is. */
async function reaching<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === undefined || status >= 500) throw new ObjectStoreUnavailable(`the object store did not ${what}: ${(err as Error).message}`, { cause: err });
    throw err;
  }
}

/** The manifest `text` read from `where`, checked: every file a relative path inside the directory, with its size. */
function parseManifest(text: string, where: string): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new DamagedInObjectStore(`${where} is not valid JSON (${(err as Error).message}); expected a complete JSON document`);
  }
  const files = (parsed as { files?: unknown } | null)?.files;
  if (!Array.isArray(files)) throw new DamagedInObjectStore(`${where} has no list of files; expected {"files": [{"name": ..., "bytes": ...}, ...]}`);
  const bad = (files as unknown[]).findIndex((f) => !isFileEntry(f));
  if (bad >= 0)
    throw new DamagedInObjectStore(`${where} lists a file as ${JSON.stringify(files[bad]).slice(0, 200)}; expected {"name": <relative path>, "bytes": <size>}`);
  return { files: files as Manifest['files'] };
}

function isFileEntry(f: unknown): f is Manifest['files'][number] {
  const { name, bytes } = (f ?? {}) as { name?: unknown; bytes?: unknown };
  return (
    typeof name === 'string' &&
    name !== MANIFEST &&
    name.split('/').every((p) => p !== '' && p !== '.' && p !== '..') &&
    Number.isSafeInteger(bytes) &&
    (bytes as number) >= 0
  );
}

export class ObjectStore {
  private client: Promise<S3Client> | undefined;

  constructor(private readonly o: ObjectStoreOptions) {}

  private s3(): Promise<S3Client> {
    this.client ??= sdk().then(
      ({ S3Client }) =>
        new S3Client({
          region: this.o.region,
          forcePathStyle: this.o.forcePathStyle,
          ...(this.o.endpoint ? { endpoint: this.o.endpoint } : {}),
          // checksums only where S3 requires them: S3-compatible servers differ in the newer
          // trailing-checksum uploads, and every file's size is checked against the manifest anyway
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }),
    );
    return this.client;
  }

  /** `s3://bucket/prefix/<rel>`, for messages. */
  describe(rel: string): string {
    return `s3://${this.o.bucket}/${this.key(rel)}`;
  }

  private key(rel: string): string {
    return [this.o.prefix, rel.split(sep).join('/')].filter(Boolean).join('/');
  }

  /** Uploads every file of `localDir` as `rel`, then its manifest. Returns the bytes uploaded. */
  async putDir(localDir: string, rel: string): Promise<number> {
    const entries = await readdir(localDir, { withFileTypes: true, recursive: true });
    const files: Manifest['files'] = [];
    const [s3, { PutObjectCommand }, { Upload }] = await Promise.all([this.s3(), sdk(), import('@aws-sdk/lib-storage')]);
    for (const e of entries.filter((f) => f.isFile())) {
      const path = join(e.parentPath, e.name);
      const name = relative(localDir, path).split(sep).join('/');
      if (name === MANIFEST) continue;
      files.push({ name, bytes: (await stat(path)).size });
      const Key = `${this.key(rel)}/${name}`;
      await reaching(`take ${Key}`, () => new Upload({ client: s3, params: { Bucket: this.o.bucket, Key, Body: createReadStream(path) } }).done());
    }
    const manifest: Manifest = { files };
    const Key = `${this.key(rel)}/${MANIFEST}`;
    await reaching(`take ${Key}`, () =>
      s3.send(new PutObjectCommand({ Bucket: this.o.bucket, Key, Body: JSON.stringify(manifest), ContentType: 'application/json' })),
    );
    return files.reduce((n, f) => n + f.bytes, 0);
  }

  private async manifest(rel: string): Promise<Manifest> {
    let text: string;
    try {
      const Key = `${this.key(rel)}/${MANIFEST}`;
      const [s3, { GetObjectCommand }] = await Promise.all([this.s3(), sdk()]);
      const res = await reaching(`give ${Key}`, () => s3.send(new GetObjectCommand({ Bucket: this.o.bucket, Key })));
      // a transfer cut short throws here (the store away), never a damaged manifest
      text = await res.Body!.transformToString();
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey')
        throw new NotInObjectStore(`${this.describe(rel)} has no manifest: it was never uploaded completely, or it was deleted`);
      throw err;
    }
    return parseManifest(text, `${this.describe(rel)}/${MANIFEST}`);
  }

  /** Downloads the directory `rel` into `localDir` (which the caller renames into place). */
  async getDir(rel: string, localDir: string): Promise<void> {
    const { files } = await this.manifest(rel);
    await mkdir(localDir, { recursive: true });
    for (const f of files) {
      const path = join(localDir, ...f.name.split('/'));
      await mkdir(dirname(path), { recursive: true });
      const { body } = await this.openListed(rel, f);
      await pipeline(body, createWriteStream(path));
    }
  }

  /**
   * One file of the directory `rel`, as a stream, for serving it: checked against the manifest
   * as a download is, so a damaged directory is refused before any byte of it is sent.
   */
  async openFile(rel: string, name: string): Promise<{ body: Readable; bytes: number }> {
    const { files } = await this.manifest(rel);
    const listed = files.find((f) => f.name === name);
    if (!listed)
      throw new DamagedInObjectStore(
        `${this.describe(rel)}/${MANIFEST} does not list ${name}; expected it among ${files.map((f) => f.name).join(', ') || 'no files'}`,
      );
    return this.openListed(rel, listed);
  }

  /** The file `f` of the directory `rel`, which must be there with the size its manifest gives. */
  private async openListed(rel: string, f: Manifest['files'][number]): Promise<{ body: Readable; bytes: number }> {
    const Key = `${this.key(rel)}/${f.name}`;
    const where = `${this.describe(rel)}/${f.name}`;
    const [s3, { GetObjectCommand }] = await Promise.all([this.s3(), sdk()]);
    const res = await reaching(`give ${Key}`, () => s3.send(new GetObjectCommand({ Bucket: this.o.bucket, Key }))).catch((err: unknown) => {
      if ((err as Error).name === 'NoSuchKey') throw new DamagedInObjectStore(`${where} is missing; its manifest lists it with ${f.bytes} bytes`);
      throw err;
    });
    const body = res.Body as Readable;
    const bytes = res.ContentLength ?? 0;
    if (bytes !== f.bytes) {
      body.destroy();
      throw new DamagedInObjectStore(`${where} has ${bytes} bytes; its manifest says ${f.bytes}`);
    }
    return { body, bytes };
  }

  /** Names of the complete directories (those with a manifest) directly under `rel`. */
  async listComplete(rel: string): Promise<string[]> {
    const names: string[] = [];
    const under = `${this.key(rel)}/`;
    for await (const key of this.keys(under)) {
      const rest = key.slice(under.length).split('/');
      if (rest.length === 2 && rest[1] === MANIFEST) names.push(rest[0]);
    }
    return names;
  }

  /** Deletes every object under the directory `rel`: its manifest first, so that it stops counting as there at once. */
  async removeDir(rel: string): Promise<void> {
    const keys: string[] = [];
    for await (const key of this.keys(`${this.key(rel)}/`)) keys.push(key);
    const manifests = keys.filter((k) => k.endsWith(`/${MANIFEST}`));
    const rest = keys.filter((k) => !k.endsWith(`/${MANIFEST}`));
    const [s3, { DeleteObjectsCommand }] = await Promise.all([this.s3(), sdk()]);
    // DeleteObjects takes at most 1000 keys
    for (const group of [manifests, rest]) {
      for (let i = 0; i < group.length; i += 1000) {
        const Objects = group.slice(i, i + 1000).map((Key) => ({ Key }));
        const res = await reaching(`delete under ${this.describe(rel)}`, () =>
          s3.send(new DeleteObjectsCommand({ Bucket: this.o.bucket, Delete: { Objects, Quiet: true } })),
        );
        const [first] = res.Errors ?? [];
        if (first) throw new Error(`could not delete ${res.Errors?.length} objects under ${this.describe(rel)}: ${first.Code} ${first.Message}`);
      }
    }
  }

  private async *keys(prefix: string): AsyncGenerator<string> {
    const [s3, { ListObjectsV2Command }] = await Promise.all([this.s3(), sdk()]);
    let token: string | undefined;
    do {
      const after = token;
      const page = await reaching(`list ${prefix}`, () =>
        s3.send(new ListObjectsV2Command({ Bucket: this.o.bucket, Prefix: prefix, ...(after ? { ContinuationToken: after } : {}) })),
      );
      for (const o of page.Contents ?? []) if (o.Key) yield o.Key;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  close(): void {
    void this.client?.then((s3) => s3.destroy());
  }
}
