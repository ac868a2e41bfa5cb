/**
 * Where every artifact lives. Paths are built from ids that the store issued and that
 * match SAFE_ID, never from raw request text, so no request can reach outside `root`.
 *
 * Two modes, one set of paths. Without ARTIFACTS_URL the directory under `root` is the truth
 * (the embedded default; several processes share it as one volume). With ARTIFACTS_URL the
 * object store is the truth and `root` is each process's own working copy: every process still
 * reads and writes plain local files (the training child, the ingest converters and tfjs need
 * nothing else), a directory written here is published to the store when it is complete
 * (publish: files first, manifest last), and one needed here is fetched when this host has no
 * copy (checkout). Copies of published directories are a cache capped in bytes (local-cache.ts).
 * Hosts share nothing but the store: a directory's key is its path relative to `root`, so each
 * process derives paths from ids with its own root, never from a path another process recorded.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { directoryBytes } from './disk-usage.js';
import { LocalCache } from './local-cache.js';
import { DamagedInObjectStore, ObjectStore, type ObjectStoreOptions } from './object-store.js';

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** a checkpoint's directory name, as listed by the object store */
const SAFE_NAME = /^[A-Za-z0-9_-]{1,128}$/;

type Kind = 'datasets' | 'models' | 'jobs' | 'features' | 'uploads';
/** raw uploads stay with the API process that received and converts them */
const PUBLISHED: readonly Kind[] = ['datasets', 'models', 'jobs', 'features'];

export interface ArtifactsOptions {
  /** ARTIFACTS_URL's store, with ARTIFACTS_CACHE_MAX_BYTES for this process's copies */
  remote?: { store: ObjectStore; cacheMaxBytes: number };
}

/** A local copy in use: kept from eviction until released. */
export interface Lease {
  release(): Promise<void>;
}

/** A subdirectory checkoutChildren did not fetch because the store holds it damaged. */
export interface PassedOver {
  name: string;
  /** what is wrong, naming the object (DamagedInObjectStore's message) */
  problem: string;
}

/** The local copies of a directory's subdirectories, and those the store holds damaged (not fetched, so not here). */
export interface ChildrenLease extends Lease {
  passedOver: readonly PassedOver[];
}

/** The artifacts a process's configuration names: ARTIFACTS_DIR alone, or its working copy of ARTIFACTS_URL's store. */
export function openArtifacts(config: { artifactsDir: string; objectStore: ObjectStoreOptions | null; artifactsCacheMaxBytes: number }): Artifacts {
  const { artifactsDir, objectStore, artifactsCacheMaxBytes } = config;
  return new Artifacts(artifactsDir, objectStore ? { remote: { store: new ObjectStore(objectStore), cacheMaxBytes: artifactsCacheMaxBytes } } : {});
}

export class Artifacts {
  private readonly remote: { store: ObjectStore; cache: LocalCache } | undefined;
  /** fetches under way, by directory, so that two users of one copy share its download */
  private readonly fetching = new Map<string, Promise<void>>();
  /** the same for checkoutChildren, by parent: all of its callers learn what was passed over */
  private readonly fetchingChildren = new Map<string, Promise<PassedOver[]>>();
  private scanned: Promise<void> | undefined;

  constructor(
    readonly root: string,
    o: ArtifactsOptions = {},
  ) {
    this.remote = o.remote && { store: o.remote.store, cache: new LocalCache(o.remote.cacheMaxBytes) };
  }

  /** whether an object store is the truth (ARTIFACTS_URL is set) */
  get isRemote(): boolean {
    return this.remote !== undefined;
  }

  private dir(kind: Kind, id: string): string {
    if (!SAFE_ID.test(id)) throw new Error(`refusing artifact path for unsafe id ${JSON.stringify(id)}`);
    return join(this.root, kind, id);
  }

  datasetDir(id: string): string {
    return this.dir('datasets', id);
  }

  modelDir(id: string): string {
    return this.dir('models', id);
  }

  /** where an upload's raw files wait until they are converted (then removed) */
  uploadDir(id: string): string {
    return this.dir('uploads', id);
  }

  /** the root of the feature caches (feature-cache.ts lays out what is under it) */
  featuresRoot(): string {
    return join(this.root, 'features');
  }

  checkpointsDir(jobId: string): string {
    return join(this.dir('jobs', jobId), 'checkpoints');
  }

  /** One checkpoint of a job, by its directory's name (epoch-…-step-…). */
  checkpointDir(jobId: string, name: string): string {
    if (!SAFE_NAME.test(name)) throw new Error(`refusing checkpoint path for unsafe name ${JSON.stringify(name)}`);
    return join(this.checkpointsDir(jobId), name);
  }

  /** where a predict job's file of predictions goes (src/jobs/predictions-file.ts names it) */
  predictionsDir(jobId: string): string {
    return join(this.dir('jobs', jobId), 'predictions');
  }

  /** `dir` relative to the root: the same on every host, and the object store's key (pending deletes record it). */
  relativePath(dir: string): string {
    const rel = relative(this.root, dir);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${dir} is not under the artifacts directory ${this.root}`);
    return rel.split(sep).join('/');
  }

  /** This host's directory for a path that relativePath gave (read back from the store, so checked again). */
  resolve(rel: string): string {
    const parts = rel.split('/');
    if (!PUBLISHED.includes(parts[0] as Kind) || parts.length < 2 || !parts.slice(1).every((p) => SAFE_NAME.test(p)))
      throw new Error(`refusing artifact path ${JSON.stringify(rel)}: expected <kind>/<id>[/<name>...]`);
    return join(this.root, ...parts);
  }

  /** The object store's name for `dir`, or undefined for a directory it does not hold. */
  private key(dir: string): string | undefined {
    const rel = this.relativePath(dir);
    return PUBLISHED.includes(rel.split('/')[0] as Kind) ? rel : undefined;
  }

  /**
   * Builds a directory under a temporary name and renames it into place, so readers never see
   * half of it; then publishes it.
   */
  async writeDir<T>(finalDir: string, fill: (tmpDir: string) => Promise<T>): Promise<T> {
    const tmp = `${finalDir}.tmp-${process.pid}-${Date.now()}`;
    await mkdir(tmp, { recursive: true });
    let filled: T;
    try {
      filled = await fill(tmp);
      await rm(finalDir, { recursive: true, force: true });
      await rename(tmp, finalDir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    await this.publish(finalDir);
    return filled;
  }

  /**
   * Uploads the complete local directory `dir` to the object store, manifest last (nothing to
   * do without one). Uploading again replaces it: what this service writes twice under one name
   * (a checkpoint or model of a resumed job) is the same bytes.
   */
  async publish(dir: string): Promise<void> {
    const key = this.key(dir);
    if (!this.remote || key === undefined) return;
    await this.scan();
    const bytes = await this.remote.store.putDir(dir, key);
    this.remote.cache.touch(dir, bytes);
    await this.remote.cache.evict();
  }

  /**
   * Makes sure this host has a copy of the published directory `dir` (fetching it when it has
   * none) and keeps it until the lease is released. Without an object store the directory is
   * the truth and is used where it is.
   */
  async checkout(dir: string): Promise<Lease> {
    const key = this.key(dir);
    if (!this.remote || key === undefined) return { release: () => Promise.resolve() };
    await this.scan();
    const { cache } = this.remote;
    await once(this.fetching, dir, async () => {
      if (await exists(dir)) return;
      await this.download(dir, key);
      cache.touch(dir, await directoryBytes(dir));
    });
    return this.lease(dir);
  }

  /**
   * The local subdirectories of `parent` made equal to the store's complete ones: those missing
   * here are fetched, and those only here (written by an attempt whose upload failed, so never
   * recorded) are removed. A job's checkpoints: it resumes from a checkpoint every host can see;
   * a base and dataset's feature caches: a cache built on one host is reused on every other.
   * One the store holds damaged is passed over (not fetched, nothing of it left here), as the
   * store would give the same bytes to a retry: the job resumes from another checkpoint, a
   * feature cache is built again. A store that does not answer still throws.
   */
  async checkoutChildren(parent: string): Promise<ChildrenLease> {
    const key = this.key(parent);
    if (!this.remote || key === undefined) return { release: () => Promise.resolve(), passedOver: [] };
    await this.scan();
    const remote = new Set((await this.remote.store.listComplete(key)).filter((n) => SAFE_NAME.test(n)));
    await mkdir(parent, { recursive: true });
    const local = (await readdir(parent)).filter((n) => !n.includes('.tmp'));
    const passedOver = await once(this.fetchingChildren, parent, async () => {
      const damaged: PassedOver[] = [];
      for (const name of local) if (!remote.has(name)) await rm(join(parent, name), { recursive: true, force: true });
      for (const name of remote) {
        if (local.includes(name)) continue;
        try {
          await this.download(join(parent, name), `${key}/${name}`);
        } catch (err) {
          if (!(err instanceof DamagedInObjectStore)) throw err;
          damaged.push({ name, problem: err.message });
        }
      }
      return damaged;
    });
    return { ...this.lease(parent), passedOver };
  }

  private lease(dir: string): Lease {
    const cache = this.remote!.cache;
    const unpin = cache.pin(dir);
    return {
      release: async () => {
        // a job's checkpoints grow while it trains: count what they hold now
        if (cache.has(dir)) cache.touch(dir, await directoryBytes(dir));
        unpin();
        await cache.evict();
      },
    };
  }

  private async download(dir: string, key: string): Promise<void> {
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    try {
      await this.remote!.store.getDir(key, tmp);
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** One file of a published directory, streamed from the object store (or the local directory without one), for serving it. */
  async openFile(dir: string, name: string): Promise<{ body: Readable; bytes: number }> {
    const key = this.key(dir);
    if (this.remote && key !== undefined) return this.remote.store.openFile(key, name);
    const file = join(dir, name);
    const { size } = await stat(file);
    return { body: createReadStream(file), bytes: size };
  }

  /**
   * Copies files of the published directory `dir` into `to`, from the object store when it is the
   * truth (checked against the manifest as openFile is; no copy of `dir` is kept here).
   */
  async copyFiles(dir: string, names: readonly string[], to: string): Promise<void> {
    for (const name of names) {
      const { body } = await this.openFile(dir, name);
      await pipeline(body, createWriteStream(join(to, name)));
    }
  }

  /** Removes the directory here and, when it is published, from the object store. */
  async remove(dir: string): Promise<void> {
    const key = this.key(dir);
    this.remote?.cache.forgetUnder(dir);
    await rm(dir, { recursive: true, force: true });
    if (this.remote && key !== undefined) await this.remote.store.removeDir(key);
  }

  /** Lets go of the object store's connections. */
  close(): void {
    this.remote?.store.close();
  }

  /** The copies already on disk when the process starts count against the cache. */
  private scan(): Promise<void> {
    this.scanned ??= (async () => {
      const cache = this.remote!.cache;
      const dirs = [
        ...(await subdirs(join(this.root, 'datasets'))),
        ...(await subdirs(join(this.root, 'models'))),
        ...(await subdirs(join(this.root, 'jobs'))).map((d) => join(d, 'checkpoints')),
        ...(await Promise.all((await subdirs(this.featuresRoot())).map(subdirs))).flat(),
      ];
      for (const dir of dirs) if (!cache.has(dir)) cache.touch(dir, await directoryBytes(dir));
      await cache.evict();
    })();
    return this.scanned;
  }
}

/** Runs `fn` for `dir` unless a run is under way (in `running`), whose result is then shared. */
async function once<T>(running: Map<string, Promise<T>>, dir: string, fn: () => Promise<T>): Promise<T> {
  const under = running.get(dir);
  if (under) return under;
  const p = fn().finally(() => running.delete(dir));
  running.set(dir, p);
  return p;
}

async function exists(dir: string): Promise<boolean> {
  return stat(dir).then(
    () => true,
    () => false,
  );
}

async function subdirs(parent: string): Promise<string[]> {
  const entries = await readdir(parent, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && !e.name.includes('.tmp')).map((e) => join(parent, e.name));
}
