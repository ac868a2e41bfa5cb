import { join } from 'node:path';
import { CheckpointStore } from './checkpoints.js';
import { DatasetStore } from './datasets.js';
import { openPglite, openPostgres, type Db } from './db.js';
import { EventStore, SWEEP_LOG, type SweepEventType } from './events.js';
import { FeatureCacheStore } from './feature-caches.js';
import { JobStore } from './jobs.js';
import { migrate } from './migrate.js';
import { ModelStore } from './models.js';
import { PendingDeleteStore } from './pending-deletes.js';
import { SweepStore } from './sweeps.js';

export interface Store {
  db: Db;
  jobs: JobStore;
  events: EventStore;
  checkpoints: CheckpointStore;
  datasets: DatasetStore;
  models: ModelStore;
  featureCaches: FeatureCacheStore;
  pendingDeletes: PendingDeleteStore;
  sweeps: SweepStore;
  close(): Promise<void>;
}

/** Opens PostgreSQL when a URL is given, else PGlite under dataDir, and brings the schema up to date. */
export async function openStore(opts: { databaseUrl?: string; dataDir: string }): Promise<Store> {
  const db = opts.databaseUrl ? await openPostgres(opts.databaseUrl) : await openPglite(join(opts.dataDir, 'pglite'));
  await migrate(db);
  const events = new EventStore(db);
  const jobs = new JobStore(db, events);
  return {
    db,
    events,
    jobs,
    checkpoints: new CheckpointStore(db),
    datasets: new DatasetStore(db),
    models: new ModelStore(db),
    featureCaches: new FeatureCacheStore(),
    pendingDeletes: new PendingDeleteStore(db),
    sweeps: new SweepStore(db, jobs, new EventStore<SweepEventType>(db, SWEEP_LOG)),
    close: () => db.close(),
  };
}
