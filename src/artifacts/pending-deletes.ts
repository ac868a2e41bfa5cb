/**
 * Deleting a record and the artifact directories it owns, so that none is lost track of when
 * the object store (ARTIFACTS_URL) does not answer: the directories are recorded in
 * pending_deletes in the transaction that deletes the record, removed at once where the store
 * answers, and otherwise left for the worker hosts' reconciliation, which sweeps them
 * (sweepPendingDeletes) until the store answers. The same holds without an object store: a
 * process that dies between the record's delete and the files' leaves the row behind.
 */
import type { Logger } from 'pino';
import type { Queryable } from '../store/db.js';
import type { Store } from '../store/store.js';
import type { Artifacts } from './artifacts.js';
import { ObjectStoreUnavailable } from './object-store.js';

export interface PendingDeleteDeps {
  store: Pick<Store, 'db' | 'pendingDeletes'>;
  artifacts: Artifacts;
  log: Pick<Logger, 'warn'>;
}

/** How many recorded directories one sweep tries. */
const SWEEP_BATCH = 100;

/**
 * Runs `deleteRecords` and records `dirs` as to be removed in one transaction, then tries to
 * remove them. Where the store does not answer, they stay recorded: the delete has happened
 * all the same, and the files follow once the store is back.
 */
export async function deleteWithArtifacts(deps: PendingDeleteDeps, dirs: readonly string[], deleteRecords: (q: Queryable) => Promise<void>): Promise<void> {
  const paths = dirs.map((d) => deps.artifacts.relativePath(d));
  await deps.store.db.tx(async (q) => {
    await deps.store.pendingDeletes.add(q, paths);
    await deleteRecords(q);
  });
  await removeEach(deps, paths);
}

/**
 * Removes published directories that no record owns (a conversion whose record was deleted or
 * failed meanwhile, a record whose insert failed), through the same record as a delete's, so
 * that an object store outage leaves them to the sweep rather than in the store for ever.
 */
export function removeUnowned(deps: PendingDeleteDeps, dirs: readonly string[]): Promise<void> {
  return deleteWithArtifacts(deps, dirs, () => Promise.resolve());
}

/** Removes what earlier deletes left recorded; called by every reconciliation. Returns how many directories it removed. */
export async function sweepPendingDeletes(deps: PendingDeleteDeps): Promise<number> {
  const pending = await deps.store.pendingDeletes.list(SWEEP_BATCH);
  return removeEach(
    deps,
    pending.map((p) => p.path),
  );
}

async function removeEach(deps: PendingDeleteDeps, paths: readonly string[]): Promise<number> {
  const { store, artifacts, log } = deps;
  let removed = 0;
  for (const path of paths) {
    try {
      await artifacts.remove(artifacts.resolve(path));
    } catch (err) {
      const message = (err as Error).message;
      await store.pendingDeletes.failed(path, message);
      log.warn({ path, err: message }, 'could not remove the files of a deleted record; they stay recorded and are tried again');
      // the store is away: the others would only fail alike
      if (err instanceof ObjectStoreUnavailable) break;
      continue;
    }
    await store.pendingDeletes.done(path);
    removed++;
  }
  return removed;
}
