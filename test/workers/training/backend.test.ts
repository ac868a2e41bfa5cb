import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { selectBackend } from '../../../workers/training/backend.js';

const backendModule = fileURLToPath(new URL('../../../workers/training/backend.js', import.meta.url));
const tfjsEntry = createRequire(import.meta.url).resolve('@tensorflow/tfjs');

/** Runs selectBackend in a fresh process (the choice is per process) started in `/`. */
async function inChild(env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  const script = `
    const { selectBackend } = await import(${JSON.stringify(backendModule)});
    const tf = await import(${JSON.stringify(tfjsEntry)});
    const name = await selectBackend();
    tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync());
    console.log(name);`;
  const { TFJS_BACKEND: _, ...inherited } = process.env;
  return promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: '/', env: { ...inherited, ...env } });
}

function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

test('an unknown TFJS_BACKEND is an error naming the allowed ones; a valid one is then selected once', async () => {
  process.env.TFJS_BACKEND = 'gpu';
  await assert.rejects(selectBackend(), /TFJS_BACKEND is 'gpu'; expected one of tensorflow, wasm, cpu/);
  process.env.TFJS_BACKEND = 'wasm';
  const first = selectBackend();
  assert.equal(await first, 'wasm');
  assert.equal(selectBackend(), first, 'later calls share the first selection');
});

test('without TFJS_BACKEND the best available backend is chosen, from any working directory', async () => {
  const { stdout } = await inChild({});
  assert.equal(stdout.trim(), tfjsNodeInstalled() ? 'tensorflow' : 'wasm');
});

test('TFJS_BACKEND=cpu is honoured without the "install the node backend" banner', async () => {
  const { stdout, stderr } = await inChild({ TFJS_BACKEND: 'cpu' });
  assert.equal(stdout.trim(), 'cpu');
  assert.doesNotMatch(stderr, /node backend/);
});

test('TFJS_BACKEND=tensorflow fails loudly when @tensorflow/tfjs-node cannot load', { skip: tfjsNodeInstalled() && 'tfjs-node is installed' }, async () => {
  await assert.rejects(inChild({ TFJS_BACKEND: 'tensorflow' }), /TFJS_BACKEND=tensorflow could not be initialised: .*@tensorflow\/tfjs-node/);
});
