import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { MIGRATIONS_DIR } from '../../../src/paths.js';
import type { JobSpec } from '../../../src/schemas/job.js';
import { newId } from '../../../src/store/ids.js';
import { openStore, type Store } from '../../../src/store/store.js';
import { postgresUnavailable, startPostgres, type PostgresServer } from '../../helpers/postgres.js';

const spec: JobSpec = {
  type: 'train',
  model: { architecture: { kind: 'mlp', hidden: [8] } },
  data: { train: 'ds_x' },
  hyperparameters: { epochs: 1, batchSize: 8, optimizer: { name: 'sgd', learningRate: 0.1 } },
};

/** The same contract, run against each store the service supports. */
function storeContract(name: string, open: () => Promise<Store>, close: () => Promise<void>) {
  describe(name, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
      await close();
    });

    test('migrations are recorded once and re-running them applies nothing', async () => {
      const rows = await store.db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
      const files = readdirSync(MIGRATIONS_DIR)
        .filter((f) => f.endsWith('.sql'))
        .sort();
      assert.ok(files.length >= 3);
      assert.deepEqual(
        rows.map((r) => r.name),
        files,
      );
      const { migrate } = await import('../../../src/store/migrate.js');
      assert.deepEqual(await migrate(store.db), []);
    });

    test('concurrent event appends get gap-free, unique seqs', async () => {
      const id = newId('job');
      await store.jobs.create({ id, spec }, { maxActive: 100 });
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.db.tx((q) => store.events.append(q, id, 'log', { i }))));
      const events = await store.events.list(id, 0, 1000);
      assert.deepEqual(
        events.map((e) => e.seq),
        Array.from({ length: 41 }, (_, i) => i + 1),
      );
      assert.equal(new Set(events.slice(1).map((e) => e.data.i)).size, 40);
    });

    test('a stale attempt cannot overwrite a newer one, and a finished job stays finished', async () => {
      const id = newId('job');
      await store.jobs.create({ id, spec }, { maxActive: 100 });
      assert.ok(await store.jobs.started(id, 1));
      assert.ok(await store.jobs.started(id, 2), 'a retry takes over');
      assert.equal(await store.jobs.started(id, 1), null, 'the old attempt cannot start again');
      assert.equal(await store.jobs.progress(id, 1, { epoch: 1, epochs: 1, step: 1, steps: 1 }, 0.5), null);
      assert.equal(await store.jobs.failed(id, 1, { code: 'x', message: 'stale' }), null);
      const done = await store.jobs.succeeded(id, 2, { modelId: 'mdl_1', metrics: { testAccuracy: 0.9 } }, async () => undefined);
      assert.equal(done!.job.status, 'succeeded');
      assert.equal(await store.jobs.failed(id, 2, { code: 'x', message: 'late' }), null);
      assert.equal(await store.jobs.cancelled(id, null, 'late'), null);
      const job = await store.jobs.get(id);
      assert.equal(job!.status, 'succeeded');
      assert.equal(job!.attempt, 2);
      const statuses = (await store.events.list(id, 0, 100)).filter((e) => e.type === 'status').map((e) => e.data.status);
      assert.deepEqual(statuses, ['queued', 'running', 'running', 'succeeded']);
    });

    test('an attempt ends once: a second report of its retry, hand-back or pause changes nothing', async () => {
      const ends = [
        (id: string) => store.jobs.retrying(id, 1, { code: 'worker_crashed', message: 'died' }, 100),
        (id: string) => store.jobs.handedBack(id, 1, { epoch: 1, step: 10 }),
        (id: string) => store.jobs.paused(id, 1, { epoch: 1, step: 10 }),
      ];
      for (const end of ends) {
        const id = newId('job');
        await store.jobs.create({ id, spec }, { maxActive: 100 });
        await store.jobs.started(id, 1);
        assert.ok(await end(id));
        for (const again of ends) assert.equal(await again(id), null);
        assert.equal((await store.events.list(id, 0, 100)).length, 3, 'queued, running and the one end');
      }
    });

    test('concurrent creates and resumes cannot pass one count: a tenant never exceeds maxActive unfinished jobs', async () => {
      const tenant = `t_${newId('job')}`;
      const results = await Promise.all(Array.from({ length: 24 }, () => store.jobs.create({ id: newId('job'), spec, tenant }, { maxActive: 5 })));
      assert.equal(results.filter((r) => r.outcome === 'created').length, 5);
      assert.deepEqual(
        results.filter((r) => r.outcome === 'too_many').map((r) => r.active),
        Array.from({ length: 19 }, () => 5),
      );
      // two of them paused, then a sixth job under a raised bound; back at 5, neither paused job may resume
      const created = results.flatMap((r) => (r.outcome === 'created' ? [r.transition.job.id] : []));
      for (const id of created.slice(0, 2)) assert.ok(await store.jobs.requestPause(id, tenant));
      const extra = await store.jobs.create({ id: newId('job'), spec, tenant }, { maxActive: 6 });
      assert.equal(extra.outcome, 'created');
      const resumed = await Promise.all(created.slice(0, 2).map((id) => store.jobs.resume(id, { tenant, maxActive: 5 })));
      assert.deepEqual(resumed.map((r) => r.outcome).sort(), ['too_many', 'too_many'], 'six unfinished: neither may resume under 5');
      const both = await Promise.all(created.slice(0, 2).map((id) => store.jobs.resume(id, { tenant, maxActive: 6 })));
      assert.deepEqual(
        both.map((r) => r.outcome),
        ['resumed', 'resumed'],
        'paused jobs count already: resuming adds none',
      );
    });

    test('a rolled-back transaction leaves no event behind', async () => {
      const id = newId('job');
      await store.jobs.create({ id, spec }, { maxActive: 100 });
      await assert.rejects(store.jobs.event(id, 0, 'log', { a: 1 }, async () => Promise.reject(new Error('boom'))));
      assert.equal((await store.events.list(id, 0, 100)).length, 1);
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-store-'));
storeContract(
  'PGlite',
  () => openStore({ dataDir: dir }),
  async () => rmSync(dir, { recursive: true, force: true }),
);

const why = postgresUnavailable();
if (why && process.env.CI) throw new Error(`the PostgreSQL store test cannot run: ${why}`);
if (!why) {
  // one server (initdb and start are most of this file's cost): the contract on its default database,
  // the concurrent start on an empty database of its own
  describe('on one PostgreSQL server', () => {
    let server: PostgresServer;
    before(async () => {
      server = await startPostgres();
    });
    after(async () => server?.stop());

    storeContract(
      'PostgreSQL',
      () => openStore({ databaseUrl: server.url, dataDir: dir }),
      async () => undefined,
    );

    test('processes starting together on an empty PostgreSQL database all bring its schema up', async () => {
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      try {
        await admin.query('CREATE DATABASE empty');
      } finally {
        await admin.end();
      }
      const url = new URL(server.url);
      url.pathname = '/empty';
      const opened = await Promise.allSettled(Array.from({ length: 4 }, () => openStore({ databaseUrl: url.href, dataDir: dir })));
      for (const o of opened) if (o.status === 'fulfilled') await o.value.close();
      assert.deepEqual(
        opened.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok')),
        ['ok', 'ok', 'ok', 'ok'],
      );
    });
  });
} else {
  test('PostgreSQL store', { skip: why }, () => undefined);
}
