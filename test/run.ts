/**
 * `npm test`'s runner: every dist/test/**\/*.test.js under `node --test`, the files known to take
 * longest started first. Files start in the order given, so with the slow ones (which train at real
 * speed) last, as a sorted list puts test/workers/host/*, the run ended on one or two of them while
 * the other slots stood idle; started first, the many short files fill the gaps beside them.
 * A file not listed here runs after the listed ones, in path order; a listed file that no longer
 * exists is skipped, so the list only steers the order and never decides what runs.
 * Hand-written because node's runner takes its files in argument order and has no such option.
 *
 * Three files at a time on two cores: much of a test file's time is waiting (for a training child,
 * redis-server, a poll), so a third file uses what the other two leave idle. TEST_CONCURRENCY
 * overrides it. NODE_COMPILE_CACHE (Node 22) keeps V8's compiled code of the modules every file
 * imports, so each file after the first loads them faster.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PROJECT_ROOT } from '../src/paths.js';

/** Slowest first, from per-file CPU and wall time (README, development section). */
const SLOW_FIRST = [
  'test/workers/host/isolated-attempts.test.js',
  'test/workers/host/object-store-hosts.test.js',
  'test/workers/host/reconcile.test.js',
  'test/src/routes/jobs-pause.test.js',
  'test/workers/training/fast-step.test.js',
  'test/hostile/hostile.test.js',
  'test/src/routes/datasets-transforms.test.js',
  'test/src/fuzz.test.js',
  'test/src/dashboard/dashboard.test.js',
  'test/src/routes/metrics.test.js',
  'test/src/routes/jobs.test.js',
  'test/src/routes/jobs-fair-share.test.js',
  'test/src/cli/cli.test.js',
  'test/src/routes/jobs-methods.test.js',
  'test/src/queue/outage.test.js',
  'test/src/routes/models-predict.test.js',
  'test/src/routes/datasets-csv-jsonl.test.js',
  'test/workers/host/sweeps.test.js',
  'test/src/jobs/estimate-measured.test.js',
  'test/workers/training/adaptation.test.js',
  'test/src/routes/jobs-admission.test.js',
  'test/workers/training/transfer.test.js',
  'test/src/plugins/auth.test.js',
  'test/src/openapi/openapi.test.js',
];

const dist = join(PROJECT_ROOT, 'dist');

/** paths under dist/, as SLOW_FIRST names them */
function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.js') ? [relative(dist, join(dir, e.name))] : [],
  );
}

const found = testFiles(join(dist, 'test')).sort();
const ordered = [...SLOW_FIRST.filter((f) => found.includes(f)), ...found.filter((f) => !SLOW_FIRST.includes(f))];
const concurrency = process.env.TEST_CONCURRENCY ?? '3';
const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...ordered.map((f) => join('dist', f))], {
  cwd: PROJECT_ROOT,
  stdio: 'inherit',
  env: { NODE_COMPILE_CACHE: join(PROJECT_ROOT, 'node_modules', '.cache', 'node-compile-cache'), ...process.env },
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
