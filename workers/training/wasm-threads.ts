/**
 * Starts tfjs-backend-wasm 4.22's threaded SIMD build in Node with a given number of XNNPACK
 * threads. tfjs turns threads off in Node because two things in the emscripten glue do not fit it:
 *
 * - It starts each pthread as `new Worker(url)`, where tfjs's locateFile makes `url` a blob: URL
 *   of the pthread script, and then posts the worker the glue itself as a Blob to load with
 *   importScripts; Node's Worker takes neither (ERR_WORKER_PATH). While the backend initialises,
 *   `worker_threads.Worker` (which the glue copies to the global `Worker` it uses from then on)
 *   is therefore a subclass that runs the same pthread script from source (`eval: true`, where
 *   it has `require` as in CommonJS) with one statement appended, which hands it the glue's own
 *   unbundled file (wasm-out/tfjs-backend-wasm-threaded-simd.js) instead of the Blob. The
 *   pthread script and the glue are tfjs's, byte for byte.
 * - Its C++ caps the pool at half of emscripten_num_logical_cores() (it guesses that logical
 *   cores are hyperthreads), which the glue takes from os.cpus(): 1 thread on a 2-core machine.
 *   While it initialises, os.cpus() reports twice the threads asked for.
 *
 *
 * The glue also starts 8 pthread workers up front (about 9 MiB each) for a pool that uses
 * threads - 1 of them (the calling thread is the other): the idle ones are ended after the start,
 * as the glue's own terminateAllThreads ends them; it starts a new one if it ever needs one.
 *
 * Checked: the subclass takes over only a blob: URL whose Blob has the pthread script's exact
 * size, and the pool must end up with the threads asked for; anything else is an error at start
 * naming this file, so a tfjs upgrade cannot silently fall back (test/workers/training/wasm-threads.test.ts).
 */
import { resolveObjectURL } from 'node:buffer';
import { createRequire } from 'node:module';
import os from 'node:os';
import workerThreads from 'node:worker_threads';
import tf = require('@tensorflow/tfjs');
// required, not imported: an ES import of this CommonJS bundle scans its source first (see tfjs.cts)
import wasmBackend = require('@tensorflow/tfjs-backend-wasm');

const require = createRequire(import.meta.url);
const WASM_OUT = '@tensorflow/tfjs-backend-wasm/wasm-out/';
const PATCH = 'the wasm thread patch (workers/training/wasm-threads.ts)';

/** The pthread script as tfjs writes it into its Blob, and the statement that points it at the glue's file. */
function pthreadScript(): { script: string; blobSize: number } {
  const { wasmWorkerContents } = require(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.worker.js`) as { wasmWorkerContents: string };
  // tfjs escapes the newlines inside its string literals before making the Blob: the same here.
  const original = wasmWorkerContents.replace(/\n/g, '\\n');
  const glue = require.resolve(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.js`);
  const useGlueFile = `;{const load=self.onmessage;self.onmessage=e=>{if(e.data.cmd==="load")e.data.urlOrBlob=${JSON.stringify(glue)};load(e)}}`;
  return { script: original + useGlueFile, blobSize: Buffer.byteLength(original) };
}

/** What this file uses of the glue's pthread bookkeeping (its `PThread` object). */
interface Pthreads {
  unusedWorkers: workerThreads.Worker[];
}

/**
 * Runs `init` (setting the wasm backend with WASM_HAS_MULTITHREAD_SUPPORT on and
 * setThreadsCount(threads)) with both adjustments in place, puts the originals back whatever
 * happens, checks that the pool it made has `threads` threads, and ends the idle workers.
 */
export async function initThreadedWasm(threads: number, init: () => Promise<void>): Promise<void> {
  const { script, blobSize } = pthreadScript();
  const NodeWorker = workerThreads.Worker;
  class PthreadWorker extends NodeWorker {
    private readonly pthread: boolean;
    constructor(url: string | URL, options?: workerThreads.WorkerOptions) {
      if (typeof url !== 'string' || !url.startsWith('blob:')) {
        super(url, options);
        this.pthread = false;
        return;
      }
      const size = resolveObjectURL(url)?.size;
      if (size !== blobSize) {
        throw new Error(
          `tfjs-backend-wasm started a pthread from a ${size ?? 'revoked'}-byte blob, not its ${blobSize}-byte pthread script: ${PATCH} does not fit this tfjs version`,
        );
      }
      super(script, { ...options, eval: true });
      this.pthread = true;
    }

    // The glue refs a worker while it runs a pthread, and XNNPACK's pool threads run for good:
    // the process would never exit. The pool only computes for the main thread, which holds
    // the process open itself for as long as it has work.
    override ref(): void {
      if (!this.pthread) super.ref();
    }
  }
  const cpus = os.cpus;
  workerThreads.Worker = PthreadWorker;
  // the glue reads only the length
  const core: os.CpuInfo = { model: 'as reported to tfjs-backend-wasm', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
  os.cpus = () => Array.from({ length: 2 * threads }, () => core);
  try {
    await init();
  } finally {
    workerThreads.Worker = NodeWorker;
    os.cpus = cpus;
  }
  const made = wasmBackend.getThreadsCount();
  if (made !== threads) throw new Error(`tfjs-backend-wasm made a pool of ${made} threads; asked for ${threads}: ${PATCH} does not fit this tfjs version`);
  const pthreads = (tf.backend() as unknown as { wasm: { PThread?: Pthreads } }).wasm.PThread;
  if (!Array.isArray(pthreads?.unusedWorkers))
    throw new Error(`tfjs-backend-wasm's module has no PThread.unusedWorkers: ${PATCH} does not fit this tfjs version`);
  for (const worker of pthreads.unusedWorkers.splice(0)) void worker.terminate();
}
