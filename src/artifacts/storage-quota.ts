/**
 * The per-tenant storage quota (TENANT_STORAGE_QUOTA_BYTES): datasets, models, checkpoints and prediction files
 * together. Checked before an upload or conversion is accepted, handed to converters as their
 * output limit (checked again while they write), and checked once more when a result is kept.
 * Concurrent conversions of one tenant are each bounded by what was left when they started, so
 * at most INGEST_CONCURRENCY of them can overshoot, and the check at keeping time catches that.
 */
import type { Queryable } from '../store/db.js';
import { storageUsed } from '../store/storage.js';
import type { OutputLimit } from './ingest/output-limit.js';

export type QuotaVerdict = { ok: true } | { ok: false; usedBytes: number; quotaBytes: number; neededBytes: number };

export class StorageQuota {
  constructor(private readonly o: { db: Queryable; quotaBytes: number; datasetMaxBytes: number; imageMaxPixels: number }) {}

  get enabled(): boolean {
    return this.o.quotaBytes > 0;
  }

  /** Whether `tenant` can keep `neededBytes` more (1: whether anything at all is left). */
  async admits(tenant: string, neededBytes = 1): Promise<QuotaVerdict> {
    if (!this.enabled) return { ok: true };
    const usedBytes = await storageUsed(this.o.db, tenant);
    return usedBytes + neededBytes <= this.o.quotaBytes ? { ok: true } : { ok: false, usedBytes, quotaBytes: this.o.quotaBytes, neededBytes };
  }

  /** What a conversion for `tenant` may write, as of now. */
  async outputLimit(tenant: string): Promise<OutputLimit> {
    const quota = this.enabled ? { quotaBytes: this.o.quotaBytes, usedBytes: await storageUsed(this.o.db, tenant) } : null;
    return { datasetMaxBytes: this.o.datasetMaxBytes, quota, imageMaxPixels: this.o.imageMaxPixels };
  }
}

/** "2.0 GiB": sizes in messages people read. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`;
}
