import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Artifacts } from '../artifacts.js';
import { removeUnowned } from '../pending-deletes.js';
import type { Store } from '../../store/store.js';

export interface LeaseTiming {
  /** how often this process renews its conversions and sweeps other processes' leftovers */
  intervalMs: number;
  /** a conversion not renewed for this long belongs to a process that is gone */
  staleAfterMs: number;
  /** raw uploads and half-written directories that no conversion holds are removed after this long untouched */
  orphanAfterMs: number;
}

export const LEASE_TIMING: LeaseTiming = { intervalMs: 15_000, staleAfterMs: 60_000, orphanAfterMs: 3_600_000 };

/**
 * A dataset conversion, and a model import from a URL, runs in the API process that accepted it,
 * so a crash of that process would leave the dataset or model `validating` for ever, with its raw
 * upload or fetched files on disk. Each process therefore renews what it converts or imports
 * (hold/release take dataset and model ids alike), and every process (at start and then on an
 * interval) fails the ones nobody renews as `interrupted` and removes what they left behind.
 * Several API processes can sweep at once: failing is a guarded UPDATE, removal is idempotent.
 */
export class ConversionLeases {
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly deps: { store: Store; artifacts: Artifacts; log: Pick<Logger, 'warn'> },
    private readonly timing: LeaseTiming = LEASE_TIMING,
  ) {}

  hold(id: string): void {
    this.held.add(id);
  }

  release(id: string): void {
    this.held.delete(id);
  }

  /** Sweeps once now, then renews and sweeps on the interval until stop(). */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.timing.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  private tick(): Promise<void> {
    this.sweeping ??= this.renewAndSweep()
      .catch((err: Error) => this.deps.log.warn({ err: err.message }, 'could not renew or sweep dataset conversions; will try again'))
      .finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async renewAndSweep(): Promise<void> {
    const { store, artifacts, log } = this.deps;
    await store.datasets.heartbeat([...this.held]);
    await store.models.heartbeat([...this.held]);
    const abandoned = await store.datasets.failAbandoned(this.timing.staleAfterMs, {
      code: 'interrupted',
      message: 'the service process converting this dataset stopped before it finished; upload it again',
    });
    for (const id of abandoned) {
      log.warn({ datasetId: id }, 'dataset conversion abandoned by a stopped process; failed it as interrupted');
      // the converted directory too, if the crash came between its rename and markReady
      await Promise.all([artifacts.remove(artifacts.uploadDir(id)), removeUnowned(this.deps, [artifacts.datasetDir(id)])]);
    }
    const imports = await store.models.failAbandoned(this.timing.staleAfterMs, {
      code: 'interrupted',
      message:
        'the service process importing this model stopped before it finished fetching and checking it; import it again (POST /v1/models with the same source.url)',
      pointer: '/source/url',
    });
    for (const id of imports) {
      log.warn({ modelId: id }, 'model import abandoned by a stopped process; failed it as interrupted');
      await Promise.all([artifacts.remove(artifacts.uploadDir(id)), removeUnowned(this.deps, [artifacts.modelDir(id)])]);
    }
    await this.removeOrphans(new Set([...abandoned, ...imports]));
  }

  /**
   * Raw uploads (uploads/<id>) and half-built directories (<dir>.tmp-*, see Artifacts.writeDir)
   * that no live conversion holds: those of abandoned datasets at once, others (a model upload
   * cut off by a crash) once untouched for orphanAfterMs, since another process may still be
   * receiving them.
   */
  private async removeOrphans(abandoned: Set<string>): Promise<void> {
    const { store, artifacts } = this.deps;
    for (const kind of ['uploads', 'datasets', 'models'] as const) {
      const parent = join(artifacts.root, kind);
      const names = await readdir(parent).catch(() => [] as string[]);
      for (const name of names) {
        const partial = kind === 'uploads' || name.includes('.tmp-');
        if (!partial) continue;
        const id = name.split('.tmp-')[0];
        if (this.held.has(id)) continue;
        if (!abandoned.has(id)) {
          const owner = await (id.startsWith('mdl_') ? store.models.get(id) : store.datasets.get(id)).catch(() => null);
          if (owner?.status === 'validating') continue;
          if (Date.now() - (await newestChange(join(parent, name))) < this.timing.orphanAfterMs) continue;
        }
        await artifacts.remove(join(parent, name));
      }
    }
  }
}

/** The latest modification time of a file or of anything in a directory tree (0 when it is gone). */
async function newestChange(path: string): Promise<number> {
  const info = await stat(path).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  const entries = await readdir(path).catch(() => [] as string[]);
  const inner = await Promise.all(entries.map((e) => newestChange(join(path, e))));
  return Math.max(info.mtimeMs, ...inner);
}
