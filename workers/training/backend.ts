/**
 * Picks the tfjs backend for this training child: native TensorFlow when
 * `@tensorflow/tfjs-node` loads and computes, else WebAssembly, else plain JavaScript. On
 * WebAssembly the child trains with TRAINING_THREADS XNNPACK threads (the worker host gives each
 * child its share of the cores; unset, 1).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import tf = require('@tensorflow/tfjs');
import { MAX_TRAINING_THREADS } from '../../src/jobs/training-threads.js';
import { registerWasmGradientKernels } from './gradients/wasm-kernels.js';
import { initThreadedWasm } from './wasm-threads.js';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

let selected: Promise<string> | undefined;

/**
 * Selects and initialises the backend once per process; later calls return the same
 * promise, because the child is reused across jobs and re-initialising would drop tensors.
 * `TFJS_BACKEND` forces one backend and makes its failure fatal instead of falling back.
 */
export function selectBackend(): Promise<string> {
  selected ??= pick().catch((err: unknown) => {
    selected = undefined;
    throw err;
  });
  return selected;
}

async function pick(): Promise<string> {
  // Read first: a bad value is fatal, not a reason to fall back to another backend.
  const threads = trainingThreads();
  const forced = process.env.TFJS_BACKEND;
  if (forced !== undefined && forced !== '') {
    if (!(BACKENDS as readonly string[]).includes(forced)) {
      throw new Error(`TFJS_BACKEND is '${forced}'; expected one of ${BACKENDS.join(', ')}`);
    }
    const failure = await activate(forced as BackendName, threads);
    if (failure !== undefined) throw new Error(`TFJS_BACKEND=${forced} could not be initialised: ${failure}`);
  } else {
    for (const name of BACKENDS) {
      if ((await activate(name, threads)) === undefined) break;
    }
  }
  return tf.getBackend();
}

/** Returns undefined when `name` is now the active backend, else why it is not. */
async function activate(name: BackendName, threads: number): Promise<string | undefined> {
  try {
    if (name === 'tensorflow') {
      // A variable specifier keeps tsc from requiring the optional package's types.
      const nodeBackend = '@tensorflow/tfjs-node';
      await import(nodeBackend);
    }
    const init = async () => {
      if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') returned false`);
      await tf.ready();
    };
    if (name === 'wasm') {
      await initWasm(threads, init);
      registerWasmGradientKernels();
    } else await init();
    // The cpu backend prints an "install the node backend" banner on first use (the probe below);
    // prod mode only mutes tfjs's console warnings (NaN checks stay off either way), so it is safe.
    if (name === 'cpu') tf.enableProdMode();
    // Loading is not computing: @tensorflow/tfjs-node 4.22.0 loads on Node 23+, but its kernels
    // call util.isNullOrUndefined, which Node 23 removed (tensorflow/tfjs#8609), so every op
    // throws. One small op here sends the chain on to the next backend instead of failing jobs.
    const probe = tf.tidy(() => tf.abs(tf.scalar(-2)).dataSync()[0]);
    if (probe !== 2) return `a test op on '${name}' gave ${probe}; expected 2`;
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** TRAINING_THREADS, validated; 1 when unset. */
export function trainingThreads(): number {
  const raw = process.env.TRAINING_THREADS;
  if (raw === undefined || raw === '') return 1;
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_TRAINING_THREADS) {
    throw new Error(`TRAINING_THREADS is '${raw}'; expected an integer from 1 to ${MAX_TRAINING_THREADS}`);
  }
  return threads;
}

/**
 * With one thread, the SIMD build without threads (no idle worker threads); with more, the
 * threaded SIMD build, which XNNPACK runs on a pool of that many threads.
 */
async function initWasm(threads: number, init: () => Promise<void>): Promise<void> {
  const require = createRequire(import.meta.url);
  // required, not imported: an ES import of this CommonJS bundle scans its source first (see tfjs.cts)
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  // Resolved from this module, not the cwd, so the .wasm binaries are found wherever the
  // worker is started from; the trailing separator makes it a prefix for all three binaries.
  const distDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(distDir + path.sep);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1);
  if (threads === 1) return init();
  wasm.setThreadsCount(threads);
  await initThreadedWasm(threads, init);
}
