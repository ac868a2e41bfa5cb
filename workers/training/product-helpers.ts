/**
 * Threads of ours that share the dense step's large products (wasm-kernels.wat matMul) with the
 * calling thread in tfjs's threaded build (TRAINING_THREADS ≥ 2), whose heap is shared memory.
 * XNNPACK's pool cannot run our kernels (tfjs has no way to add a kernel to its module), and the
 * products are three quarters of the seed MLP's dense step: without these, a lone job's other
 * cores idled through them.
 *
 * Each helper is a Node worker thread with its own instance of the same compiled module on the
 * same memory. A product is cut into blocks of rows, each starting at a multiple of the kernel's
 * own 4 rows, so that every output is computed by the same instructions as in one call: the same
 * bits (test/workers/training/threads.test.ts). Blocks are claimed from one atomic counter, not
 * assigned: the calling thread takes blocks too and never waits for a helper that has not
 * started, only for a block a helper is computing. Handed a fixed half instead, the calling thread
 * waited about 1 ms on one product in twelve while the scheduler gave the helper's core to V8's
 * background threads.
 *
 * A helper spins for SPIN_MS after each product, which covers the gap to the next one in a step
 * and between steps; one that slept at once woke too late to take its share. It then sleeps, so
 * an idle child costs nothing. Used by the dense step alone: the general step's products run
 * beside XNNPACK's pool, whose own threads would then compete with a spinning helper for cores.
 */
import { Worker } from 'node:worker_threads';
import type { WasmKernels } from './wasm-kernels.js';

type MatMul = WasmKernels['matMul'];

/** Below this many multiply-adds (some 6 µs of work) a product is not shared: handing over costs more than it saves. */
const SHARE_MIN_TERMS = 1 << 18;
/** Multiply-adds per block, about as many: the wait for the last block a helper computes stays short. */
const BLOCK_TERMS = 1 << 18;
/** How long a helper spins for the next product before it sleeps, in ms. */
const SPIN_MS = 1;
/** How long the calling thread spins for a helper's last block before it sleeps between checks, in ms. */
const WAIT_SPIN_MS = 0.2;
/** A helper that has not finished a block it claimed after this long has stopped: the step fails rather than hang. */
const STALL_MS = 30_000;
const FILE = 'workers/training/product-helpers.ts';

// The control words, Int32: the product asked (1 to 0x7fff, in turn); the next block, with the
// product's number in the high 16 bits (CLOSED while the product changes); the blocks helpers
// finished of this product; 1 once a helper failed; the blocks helpers finished since they
// started (for tests); the product's blocks and rows a block; then matMul's 10 arguments.
const ASKED = 0;
const NEXT = 1;
const DONE = 2;
const FAILED = 3;
const TOTAL = 4;
const BLOCKS = 5;
const ROWS = 6;
const ARGS = 7;
const WORDS = ARGS + 10;
const CLOSED = -1;

/**
 * A helper's loop. A block is claimed by compare-and-swap on NEXT while it still holds the value
 * read: the calling thread closes NEXT before it rewrites the arguments and opens it with the next
 * product's number after, so a claim that succeeds read the arguments of its own product.
 */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { memory, module, ctl } = workerData;
const matMul = new WebAssembly.Instance(module, { env: { memory } }).exports.matMul;
let seen = 0;
for (;;) {
  const since = performance.now();
  for (let spins = 0; Atomics.load(ctl, ${ASKED}) === seen; ) {
    if ((++spins & 255) === 0 && performance.now() - since > ${SPIN_MS}) Atomics.wait(ctl, ${ASKED}, seen);
  }
  seen = Atomics.load(ctl, ${ASKED});
  for (;;) {
    const next = Atomics.load(ctl, ${NEXT});
    if (next >>> 16 !== seen || (next & 0xffff) >= ctl[${BLOCKS}]) break;
    if (Atomics.compareExchange(ctl, ${NEXT}, next, next + 1) !== next) continue;
    const [a, b, bias, c, m, k, n, rowStride, colStride, accumulate] = ctl.subarray(${ARGS}, ${ARGS + 10});
    const first = (next & 0xffff) * ctl[${ROWS}];
    try {
      matMul(a + first * rowStride * 4, b, bias, c + first * n * 4, Math.min(ctl[${ROWS}], m - first), k, n, rowStride, colStride, accumulate);
    } catch (err) {
      Atomics.store(ctl, ${FAILED}, 1);
      console.error('${FILE}: a product helper failed:', err);
    }
    Atomics.add(ctl, ${TOTAL}, 1);
    Atomics.add(ctl, ${DONE}, 1);
    Atomics.notify(ctl, ${DONE});
  }
}`;

class ProductHelpers {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(WORDS * 4));
  private asked = 0;

  constructor(memory: WebAssembly.Memory, module: WebAssembly.Module, helpers: number) {
    for (let i = 0; i < helpers; i++) {
      // the helpers only compute for this thread, which holds the process open itself while it has work
      new Worker(HELPER_SOURCE, { eval: true, workerData: { memory, module, ctl: this.ctl } }).unref();
    }
  }

  /** Blocks the helpers have computed since they started. */
  helped(): number {
    return Atomics.load(this.ctl, TOTAL);
  }

  /** `matMul`, its large products shared with the helpers by blocks of rows. */
  share(matMul: MatMul): MatMul {
    const { ctl } = this;
    return (a, b, bias, c, m, k, n, rowStride, colStride, accumulate) => {
      if (m * k * n < SHARE_MIN_TERMS || m < 8) return matMul(a, b, bias, c, m, k, n, rowStride, colStride, accumulate);
      // whole kernel blocks of 4 rows, and fewer blocks than NEXT's 16 bits count
      const rows = 4 * Math.max(1, Math.floor(BLOCK_TERMS / (k * n) / 4), Math.ceil(m / 4 / 0x4000));
      const blocks = Math.ceil(m / rows);
      const asked = (this.asked = (this.asked % 0x7fff) + 1);
      Atomics.store(ctl, NEXT, CLOSED);
      ctl.set([blocks, rows, a, b, bias, c, m, k, n, rowStride, colStride, accumulate], BLOCKS);
      Atomics.store(ctl, DONE, 0);
      Atomics.store(ctl, NEXT, asked << 16);
      Atomics.store(ctl, ASKED, asked);
      Atomics.notify(ctl, ASKED);
      let mine = 0;
      for (let block = Atomics.add(ctl, NEXT, 1) & 0xffff; block < blocks; block = Atomics.add(ctl, NEXT, 1) & 0xffff) {
        const first = block * rows;
        matMul(a + first * rowStride * 4, b, bias, c + first * n * 4, Math.min(rows, m - first), k, n, rowStride, colStride, accumulate);
        mine++;
      }
      this.waitForHelpers(blocks - mine);
    };
  }

  /** Waits until the helpers have finished `blocks` blocks of this product. */
  private waitForHelpers(blocks: number): void {
    const { ctl } = this;
    const since = performance.now();
    for (let done = Atomics.load(ctl, DONE); done < blocks; done = Atomics.load(ctl, DONE)) {
      if (Atomics.load(ctl, FAILED) !== 0) throw new Error(`${FILE}: a product helper failed (its error is above); the step cannot go on`);
      const waited = performance.now() - since;
      // a helper descheduled mid-block (or on this thread's core): sleep rather than spin it out
      if (waited > WAIT_SPIN_MS) Atomics.wait(ctl, DONE, done, 1);
      if (waited > STALL_MS) throw new Error(`${FILE}: a product helper has not finished its block after ${STALL_MS / 1000} s; the step cannot go on`);
    }
  }
}

const helpersByMemory = new WeakMap<WebAssembly.Memory, ProductHelpers>();

/**
 * `kernels.matMul` with its large products shared by `threads - 1` helpers, when `memory` is
 * shared (the threaded build); otherwise `kernels.matMul` itself. The helpers are started once a
 * memory (a process) and instantiate `module`, the kernels' own compiled module.
 */
export function sharedMatMul(kernels: WasmKernels, o: { memory: WebAssembly.Memory; module: WebAssembly.Module; threads: number }): MatMul {
  if (!(o.memory.buffer instanceof SharedArrayBuffer) || o.threads < 2) return kernels.matMul;
  let helpers = helpersByMemory.get(o.memory);
  if (helpers === undefined) {
    helpers = new ProductHelpers(o.memory, o.module, o.threads - 1);
    helpersByMemory.set(o.memory, helpers);
  }
  return helpers.share(kernels.matMul);
}

/** Blocks the helpers on `memory` have computed since they started (0 without helpers): tests check that products were shared. */
export function blocksHelped(memory: WebAssembly.Memory): number {
  return helpersByMemory.get(memory)?.helped() ?? 0;
}
