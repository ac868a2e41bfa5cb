/**
 * `npm test`: every dist/test/**\/*.test.js file in a process of its own, on the settings that let
 * the suite fit in 5 minutes on a 2-core machine (README, Development):
 * - three files at a time (`--test-concurrency=3`): a third file fills the other two's waits;
 * - Node's compile cache (NODE_COMPILE_CACHE), shared by the test processes and the training
 *   children they start, which all load the same modules;
 * - temp files on a tmpfs where the machine has room: every file that starts the service copies a
 *   39 MB PGlite template (data-dir.ts), and the tests write data dirs, checkpoints and models. On
 *   this machine's ext4 a copy of the template costs ~0.3 s of kernel CPU, on /dev/shm ~0.04 (the
 *   whole suite: 79 → 52 s of system CPU). /dev/shm is taken when TMPDIR is unset and it has
 *   SHM_FREE_BYTES free (Docker gives containers 64 MB by default); otherwise the usual temp dir;
 * - the PGlite template made once before the files start: on a machine without one, files that
 *   start together would each run initdb for it (~8 s of CPU each).
 * Arguments go to node --test, e.g. `npm test -- --test-name-pattern=pause`.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROJECT_ROOT } from '../../src/paths.js';
import { pgliteTemplate } from './data-dir.js';

const SHM = '/dev/shm';
/** what three files at a time need at most is a few hundred MB; the rest is headroom */
const SHM_FREE_BYTES = 4 * 1024 ** 3;

function tmpfsWithRoom(): string | undefined {
  try {
    accessSync(SHM, constants.W_OK);
    const fs = statfsSync(SHM);
    return fs.bavail * fs.bsize >= SHM_FREE_BYTES ? SHM : undefined;
  } catch {
    return undefined;
  }
}

const testRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const files = readdirSync(testRoot, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.js'))
  .sort()
  .map((f) => join(testRoot, f));

const env: NodeJS.ProcessEnv = { ...process.env, NODE_COMPILE_CACHE: join(PROJECT_ROOT, 'node_modules', '.cache', 'node-compile-cache') };
const shm = env.TMPDIR === undefined ? tmpfsWithRoom() : undefined;
if (shm !== undefined) {
  env.TMPDIR = shm;
  // os.tmpdir() reads TMPDIR at each call: the template is made where the files will look for it
  process.env.TMPDIR = shm;
}
await pgliteTemplate();

const run = spawn(process.execPath, ['--test', '--test-concurrency=3', ...process.argv.slice(2), ...files], { stdio: 'inherit', env });
run.on('exit', (code) => process.exit(code ?? 1));
