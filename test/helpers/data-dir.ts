/**
 * A new temp data directory whose PGlite database already exists and is migrated: a copy of a
 * template made once per machine, schema and PGlite version. Creating a PGlite database runs
 * initdb in WebAssembly, about 8 s of CPU (more than most test files spend on their own checks);
 * opening a copy costs about half a second. The template is exactly what openStore leaves in a
 * new data dir, so a test meets the same fresh store, and the path from an empty directory runs
 * whenever the template is made (and in the store tests, which open their own).
 * Made in a temp dir and renamed into place, so test files starting together never copy half of one.
 *
 * One setting differs from a production data dir: a 16 MB buffer pool instead of PostgreSQL's 128 MB.
 * PGlite zeroes its whole shared memory at every start (a wasm memset over fresh pages), about
 * 90 ms of CPU per open at 128 MB; a test database is a few MB, and the buffer pool's size changes
 * no query's answer, only how much of the data stays cached.
 *
 * And a process that imports this file compiles WebAssembly with Liftoff only (V8's baseline
 * compiler, no optimising tier): PGlite's 9 MB module is compiled at every open, and a test's
 * queries are too few to repay optimising it (an open: 740 → 445 ms of CPU). It is a V8 flag of this
 * process alone: training and prediction children are forked with their own flags and keep the
 * optimising tier.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { MIGRATIONS_DIR, PROJECT_ROOT } from '../../src/paths.js';
import { openStore } from '../../src/store/store.js';

v8.setFlagsFromString('--liftoff-only');

/** where openStore keeps PGlite inside a data dir */
const PGLITE = 'pglite';
/** appended to the template's postgresql.conf (why: this file's opening comment) */
const TEST_CONF = '\n# tests: a small buffer pool, zeroed at every open\nshared_buffers = 16MB\n';

function templateDir(): string {
  const hash = createHash('sha256');
  // its package.json is not among the package's exports
  hash.update(readFileSync(join(PROJECT_ROOT, 'node_modules', '@electric-sql', 'pglite', 'package.json')));
  hash.update(TEST_CONF);
  for (const name of readdirSync(MIGRATIONS_DIR).sort()) hash.update(name).update(readFileSync(join(MIGRATIONS_DIR, name)));
  return join(tmpdir(), `tfjs-adapt-pglite-template-${hash.digest('hex').slice(0, 16)}`);
}

/** The migrated template, made here if this machine has none yet (`npm test` makes it first: run-suite.ts). */
export async function pgliteTemplate(): Promise<string> {
  const dir = templateDir();
  if (existsSync(dir)) return dir;
  const build = mkdtempSync(join(tmpdir(), 'tfjs-adapt-pglite-build-'));
  try {
    const store = await openStore({ dataDir: build });
    await store.close();
    appendFileSync(join(build, PGLITE, 'postgresql.conf'), TEST_CONF);
    try {
      renameSync(join(build, PGLITE), dir);
    } catch (err) {
      // another test file made it first
      if (!existsSync(dir)) throw err;
    }
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  return dir;
}

export async function freshDataDir(prefix: string): Promise<string> {
  const from = await pgliteTemplate();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(from, join(dir, PGLITE), { recursive: true });
  return dir;
}
