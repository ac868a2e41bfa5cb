/**
 * TRAINING_THREADS: the threaded SIMD wasm build on 2 threads trains exactly as the
 * single-threaded SIMD build does. XNNPACK splits each product and convolution by output tiles,
 * each computed whole by one thread in the same order, tfjs's own kernels do not run in
 * parallel, and our helper threads take the dense step's products by blocks of whole rows
 * (product-helpers.ts), so losses and weights must agree bit for bit, not just within a tolerance.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchModel } from '../../../bench/recipes.js';
import type { ThreadsRun } from './threads-run.js';

const RUNNER = fileURLToPath(new URL('./threads-run.js', import.meta.url));

/** The run in a fresh process; the timeout only catches a process that would never exit (a pool thread holding it open). */
type Update = 'momentum' | 'nesterov' | 'sgd';

async function run(model: BenchModel, steps: number, threads: number, update: Update): Promise<ThreadsRun> {
  const { stdout } = await promisify(execFile)(process.execPath, [RUNNER, model, String(steps), update], {
    // on 2 threads, every block of a shared product or update is a helper's (product-helpers.ts)
    env: { ...process.env, TRAINING_THREADS: String(threads), PRODUCT_HELPERS_TAKE_ALL: '1' },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 300_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ThreadsRun;
}

async function sameOnOneAndTwoThreads(model: BenchModel, steps: number, o: { helped: boolean; update?: Update }): Promise<void> {
  const one = await run(model, steps, 1, o.update ?? 'momentum');
  const two = await run(model, steps, 2, o.update ?? 'momentum');
  assert.equal(one.threads, 1);
  assert.deepEqual(one.workerThreads, [], 'one thread: the build without threads, no worker threads');
  assert.equal(two.threads, 2, 'the pool has the 2 threads asked for (tfjs alone would cap it at half the cores: 1 on a 2-core machine)');
  assert.equal(two.workerThreads.length, 1, 'one pool thread runs in a Node worker thread, the other is the calling thread');
  assert.ok(two.workerThreads[0] > 0, 'it is a real worker thread');
  assert.equal(one.helped, 0, 'one thread: no helper threads');
  // A step shares 3 calls on the first layer's 128 columns (forward, kernel gradient, update), 8
  // blocks of 16 each; the 10 logits are too few. Momentum's first update is tfjs's own, which makes its slots.
  const updates = steps - ((o.update ?? 'momentum') === 'sgd' ? 0 : 1);
  if (o.helped) assert.equal(two.helped, (2 * steps + updates) * 8, "our helper thread computed every block of the first layer's products and update");
  else assert.equal(two.helped, 0, 'no dense step, no helper threads');
  assert.equal(one.losses.length, steps);
  assert.ok(one.changed > one.total / 2, `the steps change most weights: ${one.changed} of ${one.total}`);
  assert.deepEqual(two.losses, one.losses, 'the same loss at every step');
  assert.ok(two.weights === one.weights, 'the same weights after the last step, bit for bit');
}

test('seed MLP, 20 steps of batch 64 (the last of 39 rows): 2 threads, with our helper thread, train bit for bit as 1', async () => {
  await sameOnOneAndTwoThreads('mlp', 20, { helped: true });
});

test('seed MLP with Nesterov momentum, and with plain SGD (each update its own kernel, shared by columns): 2 threads train bit for bit as 1', async () => {
  await sameOnOneAndTwoThreads('mlp', 8, { helped: true, update: 'nesterov' });
  await sameOnOneAndTwoThreads('mlp', 8, { helped: true, update: 'sgd' });
});

test('small CNN (16, 32 conv, 64 dense), 6 steps of batch 64: 2 threads train bit for bit as 1', async () => {
  await sameOnOneAndTwoThreads('cnn', 6, { helped: false });
});
