import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Where every artifact lives. Paths are built from ids that the store issued and that
 * match SAFE_ID, never from raw request text, so no request can reach outside `root`.
 */
export class Artifacts {
  constructor(readonly root: string) {}

  private dir(kind: 'datasets' | 'models' | 'jobs' | 'uploads', id: string): string {
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

  /** Builds a directory under a temporary name and renames it into place, so readers never see half of it. */
  async writeDir(finalDir: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
    const tmp = `${finalDir}.tmp-${process.pid}-${Date.now()}`;
    await mkdir(tmp, { recursive: true });
    try {
      await fill(tmp);
      await rm(finalDir, { recursive: true, force: true });
      await rename(tmp, finalDir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  async remove(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }
}
