import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openPglite, type Db } from '../../../src/store/db.js';

let dir: string;
let db: Db;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-db-'));
  db = await openPglite(dir);
  await db.exec(`CREATE TABLE t (id text PRIMARY KEY, n int, doc jsonb); INSERT INTO t VALUES ('a', 1, '{"k": [1]}')`);
});
after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const read = () => db.query<{ id: string; n: number; doc: { k: number[] } }>('SELECT * FROM t WHERE id = $1', ['a']);

test('PGlite: a repeated read is answered from the cache, with rows nobody can change', async () => {
  const first = await read();
  assert.equal(await read(), first, 'the same answer object: PGlite was not asked again');
  assert.notEqual(await db.query('SELECT * FROM t WHERE id = $1', ['b']), first, 'other parameters are another read');
  assert.throws(() => {
    first[0].doc.k.push(2);
  }, TypeError);
  assert.equal((await db.query<{ one: number }>('SELECT 1 AS one'))[0].one, 1);
  assert.notEqual(await db.query('SELECT 1 AS one'), await db.query('SELECT 1 AS one'), 'a read of no table (the health check) always runs');
});

test('PGlite: every kind of write makes the next read run again and see it', async () => {
  await read();
  await db.query('UPDATE t SET n = 2 WHERE id = $1', ['a']);
  assert.equal((await read())[0].n, 2, 'after query()');
  await db.exec(`UPDATE t SET n = 3 WHERE id = 'a'`);
  assert.equal((await read())[0].n, 3, 'after exec()');
  await db.tx(async (q) => {
    await q.query('UPDATE t SET n = 4 WHERE id = $1', ['a']);
    assert.equal((await q.query<{ n: number }>('SELECT n FROM t WHERE id = $1', ['a']))[0].n, 4, 'a transaction reads its own writes');
  });
  assert.equal((await read())[0].n, 4, 'after tx()');
  await assert.rejects(
    db.tx(async (q) => {
      await q.query('UPDATE t SET n = 5 WHERE id = $1', ['a']);
      throw new Error('rolled back');
    }),
  );
  assert.equal((await read())[0].n, 4, 'after a rolled-back tx()');
  const locked = await db.tx((q) => q.query<{ n: number }>('SELECT n FROM t WHERE id = $1 FOR UPDATE', ['a']));
  assert.equal(locked[0].n, 4);
});

test('PGlite: a read in flight while a write commits is not kept', async () => {
  await db.query('UPDATE t SET n = 10 WHERE id = $1', ['a']);
  // issued together: the read may run before the write, but its answer must not outlive the write
  const [early] = await Promise.all([read(), db.query('UPDATE t SET n = 11 WHERE id = $1', ['a'])]);
  assert.ok([10, 11].includes(early[0].n));
  assert.equal((await read())[0].n, 11);
});
