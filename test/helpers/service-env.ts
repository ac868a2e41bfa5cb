/**
 * Settings every service a test starts shares, on top of its own (harness.ts, api.ts, and the tests
 * that spawn server.js themselves):
 * - COMPILED_CODE_DIR: one per checkout, not per data dir, so that the validators and serializers one
 *   test process compiled are loaded by the next (src/plugins/compiled-code.ts).
 * - TRAINING_THREADS 1: `npm test` runs three files at once, so every core is already busy and a
 *   training child's extra XNNPACK threads only contend with the other files for it (two copies of
 *   jobs.test.ts at once, idle 2-core machine: 10.4 → 8.3 CPU-s a copy). What threads change is tested
 *   on its own: test/workers/training/threads.test.ts trains on 2 and compares with 1.
 */
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/paths.js';

export const SERVICE_ENV = {
  COMPILED_CODE_DIR: join(PROJECT_ROOT, 'node_modules', '.cache', 'tfjs-adapt-compiled-code'),
  TRAINING_THREADS: '1',
} as const;
