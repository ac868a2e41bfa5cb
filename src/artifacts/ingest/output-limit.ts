/**
 * How large a conversion's output may grow: DATASET_MAX_BYTES, and what the tenant's storage
 * quota has left when the conversion starts. Converters check a size they can compute from a
 * header before writing anything; DatasetWriter checks again before every example it writes,
 * so no upload, however small, makes the disk hold more than this.
 */
import type { DatasetErrorLocation } from '../../schemas/dataset-error.js';
import { IngestError } from './ingest-error.js';

export interface OutputLimit {
  /** DATASET_MAX_BYTES */
  datasetMaxBytes: number;
  /** the tenant's quota and its use when the conversion started; null: no quota */
  quota: { quotaBytes: number; usedBytes: number } | null;
  /** IMAGE_MAX_PIXELS: the largest image area (h x w) an example may have */
  imageMaxPixels: number;
}

/** Bytes a dataset of `count` examples takes on disk: features, plus one int32 label each. */
export const datasetBytes = (count: number, featureSize: number, bytesPerValue: number) => count * (featureSize * bytesPerValue + 4);

/**
 * Refuses `bytes` of output over either limit. `what` says where the size comes from, e.g.
 * "images declares 100000 items of [100, 100] ubyte".
 */
export function checkOutputBytes(limit: OutputLimit, bytes: number, what: string, location: DatasetErrorLocation = {}): void {
  if (bytes > limit.datasetMaxBytes) {
    throw new IngestError(
      'dataset_too_large',
      `${what}: ${bytes} bytes once converted, over the ${limit.datasetMaxBytes} bytes a dataset may take on this service (DATASET_MAX_BYTES); upload fewer or smaller examples`,
      { ...location, expected: limit.datasetMaxBytes, found: bytes },
    );
  }
  const q = limit.quota;
  if (q && q.usedBytes + bytes > q.quotaBytes) {
    const left = Math.max(0, q.quotaBytes - q.usedBytes);
    throw new IngestError(
      'storage_quota_exceeded',
      `${what}: ${bytes} bytes once converted, but this tenant's storage quota has ${left} of ${q.quotaBytes} bytes left (${q.usedBytes} used, TENANT_STORAGE_QUOTA_BYTES); delete datasets or models to make room`,
      { ...location, expected: left, found: bytes },
    );
  }
}
