/** The checks of workers/training/wasm-threads.ts and TRAINING_THREADS; threads.test.ts trains with them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import workerThreads from 'node:worker_threads';
import { selectBackend } from '../../../workers/training/backend.js';
import { initThreadedWasm } from '../../../workers/training/wasm-threads.js';

test("a pthread from a blob that is not tfjs's pthread script is refused, naming the patch, and Node's Worker is put back", async () => {
  const NodeWorker = workerThreads.Worker;
  const other = 'postMessage("not the pthread script")';
  const url = URL.createObjectURL(new Blob([other], { type: 'application/javascript' }));
  await assert.rejects(
    initThreadedWasm(2, async () => void new workerThreads.Worker(url)),
    new RegExp(
      `started a pthread from a ${other.length}-byte blob, not its \\d+-byte pthread script: the wasm thread patch \\(workers/training/wasm-threads\\.ts\\) does not fit this tfjs version`,
    ),
  );
  assert.equal(workerThreads.Worker, NodeWorker);
});

test('TRAINING_THREADS out of 1..8 is an error, not a fall back to another backend', async () => {
  for (const bad of ['0', '9', '1.5', 'two']) {
    process.env.TRAINING_THREADS = bad;
    await assert.rejects(selectBackend(), new RegExp(`TRAINING_THREADS is '${bad.replace('.', '\\.')}'; expected an integer from 1 to 8`));
  }
});
