/**
 * Dataset conversions as a service for the routes: each accepted dataset is converted in the
 * background (a worker thread, bounded by the tenant's output limit), kept while it renews its
 * lease, and ends `ready` with its size recorded, or `failed` with a code; never stuck
 * `validating`, never leaving files behind.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DatasetError } from '../../schemas/dataset-error.js';
import type { Store } from '../../store/store.js';
import type { Artifacts } from '../artifacts.js';
import { removeUnowned } from '../pending-deletes.js';
import { FEATURES_FILE, LABELS_FILE } from '../dataset-files.js';
import type { StorageQuota } from '../storage-quota.js';
import type { ConversionLeases } from './conversion-leases.js';
import { IngestError } from './ingest-error.js';
import { IngestRunner } from './ingest-runner.js';
import type { IngestRequest, IngestResult } from './job.js';
import { checkOutputBytes } from './output-limit.js';

export interface ConversionsDeps {
  store: Store;
  artifacts: Artifacts;
  quota: StorageQuota;
  log: Pick<Logger, 'warn' | 'error'>;
  concurrency: number;
  maxHeapMb: number;
  /** the app's leases (started and stopped with it): a conversion is held while it runs */
  leases: ConversionLeases;
}

/** Bytes of a dataset directory's compact files. */
export async function datasetDirBytes(dir: string): Promise<number> {
  const sizes = await Promise.all([FEATURES_FILE, LABELS_FILE].map(async (f) => (await stat(join(dir, f))).size));
  return sizes[0] + sizes[1];
}

export class Conversions {
  private readonly runner: IngestRunner;
  private readonly leases: ConversionLeases;
  private readonly converting = new Set<Promise<void>>();

  constructor(private readonly d: ConversionsDeps) {
    this.runner = new IngestRunner({ concurrency: d.concurrency, maxHeapMb: d.maxHeapMb });
    this.leases = d.leases;
  }

  /** Stops running conversions (they fail as interrupted) and waits until each has recorded its outcome. */
  async close(): Promise<void> {
    await this.runner.close();
    await Promise.allSettled([...this.converting]);
  }

  /**
   * Converts dataset `id` (recorded as validating) in the background. `cleanup` removes the
   * raw upload; it runs before the outcome is recorded, so a client that sees ready or failed
   * sees no leftovers.
   */
  convert(id: string, request: IngestRequest, o: { tenant: string; cleanup?: () => Promise<void> }): void {
    const { store, artifacts, quota, log } = this.d;
    const removeUpload = () => o.cleanup?.().catch((e: unknown) => log.warn({ err: e, datasetId: id }, 'could not remove the upload'));
    this.leases.hold(id);
    const task = (async () => {
      const dir = artifacts.datasetDir(id);
      try {
        const limit = await quota.outputLimit(o.tenant);
        let result: IngestResult | undefined;
        let bytes = 0;
        await artifacts.writeDir(dir, async (tmp) => {
          result = await this.runner.run({ ...request, outDir: tmp, limit });
          bytes = await datasetDirBytes(tmp);
          // other conversions of this tenant may have landed meanwhile
          checkOutputBytes(await quota.outputLimit(o.tenant), bytes, 'the converted dataset');
        });
        if (!result) throw new Error('the conversion answered nothing');
        await removeUpload();
        const { classes, ...facts } = result;
        const ready = await store.datasets.markReady(id, { ...facts, classes, numClasses: classes.length, dir, bytes });
        // deleted while it was converting: the files have no owner
        if (!ready) await removeUnowned(this.d, [dir]);
      } catch (err) {
        await removeUpload();
        const error = await this.failure(err, request);
        await store.datasets.markFailed(id, error).catch((e: unknown) => log.error({ err: e, datasetId: id }, 'could not record the failed conversion'));
      }
    })();
    this.converting.add(task);
    void task.finally(() => {
      this.converting.delete(task);
      this.leases.release(id);
    });
  }

  private async failure(err: unknown, request: IngestRequest): Promise<DatasetError> {
    if (err instanceof IngestError) return err.toJSON();
    if (request.kind === 'derive' && !(await this.d.store.datasets.get(request.source.id).catch(() => null))) {
      return { code: 'source_removed', message: `dataset ${request.source.id} was deleted while this dataset was being derived from it` };
    }
    this.d.log.error({ err }, 'dataset conversion failed');
    return { code: 'internal', message: 'converting the dataset failed on the server (it has been logged); try again' };
  }
}
