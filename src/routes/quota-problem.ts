import { formatBytes, type StorageQuota } from '../artifacts/storage-quota.js';
import { HttpProblem } from '../plugins/problem.js';

/**
 * Refuses a request for which `tenant`'s storage quota has no room (`neededBytes` more; by
 * default, any at all). 409: the request is fine, but what the tenant keeps leaves no room for
 * it, and deleting some makes room.
 */
export async function requireRoom(quota: StorageQuota, tenant: string, neededBytes?: number): Promise<void> {
  const v = await quota.admits(tenant, neededBytes);
  if (v.ok) return;
  throw new HttpProblem(
    409,
    'storage_quota_exceeded',
    'Storage quota exceeded',
    `this tenant keeps ${v.usedBytes} bytes (${formatBytes(v.usedBytes)}) of datasets, models, checkpoints and prediction files; its quota is ${v.quotaBytes} bytes (${formatBytes(v.quotaBytes)}, TENANT_STORAGE_QUOTA_BYTES)` +
      (v.neededBytes > 1 ? ` and this needs ${v.neededBytes} more` : ', with no room left') +
      '; delete datasets or models to make room',
  );
}
