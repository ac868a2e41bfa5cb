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
async function run(model: BenchModel, steps: number, threads: number): Promise<ThreadsRun> {
  const { stdout } = await promisify(execFile)(process.execPath, [RUNNER, model, String(steps)], {
    env: { ...process.env, TRAINING_THREADS: String(threads) },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 300_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ThreadsRun;
}

async function sameOnOneAndTwoThreads(model: BenchModel, steps: number, o: { helped: boolean }): Promise<void> {
  const one = await run(model, steps, 1);
  const two = await run(model, steps, 2);
  assert.equal(one.threads, 1);
  assert.deepEqual(one.workerThreads, [], 'one thread: the build without threads, no worker threads');
  assert.equal(two.threads, 2, 'the pool has the 2 threads asked for (tfjs alone would cap it at half the cores: 1 on a 2-core machine)');
  assert.equal(two.workerThreads.length, 1, 'one pool thread runs in a Node worker thread, the other is the calling thread');
  assert.ok(two.workerThreads[0] > 0, 'it is a real worker thread');
  assert.equal(one.helped, 0, 'one thread: no helper threads');
  if (o.helped) assert.ok(two.helped > 0, `our helper thread computed blocks of the dense step's products: ${two.helped}`);
  else assert.equal(two.helped, 0, 'no dense step, no helper threads');
  assert.equal(one.losses.length, steps);
  assert.ok(one.changed > one.total / 2, `the steps change most weights: ${one.changed} of ${one.total}`);
  assert.deepEqual(two.losses, one.losses, 'the same loss at every step');
  assert.ok(two.weights === one.weights, 'the same weights after the last step, bit for bit');
}

test('seed MLP, 20 steps of batch 64 (the last of 39 rows): 2 threads, with our helper thread, train bit for bit as 1', async () => {
  await sameOnOneAndTwoThreads('mlp', 20, { helped: true });
});

test('small CNN (16, 32 conv, 64 dense), 6 steps of batch 64: 2 threads train bit for bit as 1', async () => {
  await sameOnOneAndTwoThreads('cnn', 6, { helped: false });
});
