/**
 * Threads of ours that share the dense step's large products and its weights' updates
 * (wasm-kernels.wat matMul, sgd, momentum, nesterov) with the calling thread in tfjs's threaded
 * build (TRAINING_THREADS ≥ 2), whose heap is shared memory. XNNPACK's pool cannot run our kernels
 * (tfjs has no way to add a kernel to its module), and the products are three quarters of the
 * seed MLP's dense step: without these, a lone job's other cores idled through them.
 *
 * Each helper is a Node worker thread with its own instance of the same compiled module on the
 * same memory. A call is cut into blocks of columns (of a product's b and c, of an update's
 * matrices), each a multiple of the products' own 8 but the last, so that every value is computed
 * by the same instructions as in one call: the same bits (test/workers/training/threads.test.ts).
 * By columns, and the update too: a thread then touches only its columns of the weights. Split
 * by rows, every block read all the weights, and the update the calling thread then wrote over
 * them took 0.20 ms instead of 0.05 for the seed MLP, invalidating the helper's copies line by
 * line (the step was slower than on one thread); split by columns with the update on the calling
 * thread, 0.12-0.20 ms.
 *
 * Blocks are claimed, not assigned: the calling thread takes them from the front, the helpers
 * from the back, by compare-and-swap on one word holding both ends. So the calling thread never
 * waits for a helper that has not started, only for a block a helper is computing, and from call
 * to call the same columns tend to stay on the same core. Handed a fixed half instead, the
 * calling thread waited about 1 ms on one product in twelve while the scheduler gave the
 * helper's core to V8's background threads.
 *
 * A helper spins for SPIN_MS after each call, which covers the gaps within a step and between
 * steps; one that slept at once woke too late to take its share. It then sleeps, so an idle child
 * costs nothing. Used by the dense step alone: the general step's products run beside XNNPACK's
 * pool, whose own threads would then compete with a spinning helper for cores.
 */
import { Worker } from 'node:worker_threads';
import type tf = require('@tensorflow/tfjs');
import type { WasmKernels } from './wasm-kernels.js';

type MatMul = WasmKernels['matMul'];
type UpdateName = 'sgd' | 'momentum' | 'nesterov';

/**
 * The kernels a helper runs, by number: the arguments that are byte offsets of a block's first
 * column (0, for no bias, stays 0) and the one that counts its columns.
 */
const KINDS = [
  { name: 'matMul', offsets: [1, 2, 3], columns: 6 },
  { name: 'sgd', offsets: [0, 1, 2], columns: 3 },
  { name: 'momentum', offsets: [0, 1, 2, 3, 4], columns: 5 },
  { name: 'nesterov', offsets: [0, 1, 2, 3, 4], columns: 5 },
] as const;

/** Below this many multiply-adds (some 6 µs of work), or this few columns, a product is not shared: handing over costs more than it saves. */
const SHARE_MIN_TERMS = 1 << 18;
const SHARE_MIN_COLUMNS = 32;
/** Multiply-adds per block, about as many: the wait for the last block a helper computes stays short. */
const BLOCK_TERMS = 1 << 18;
/** Columns of a block: a multiple of the products' 8 and of a cache line's 16 values, so that two threads never write one line. */
const BLOCK_COLUMNS = 16;
/** How long a helper spins for the next call before it sleeps, in ms. */
const SPIN_MS = 1;
/** How long the calling thread spins for a helper's last block before it sleeps between checks, in ms. */
const WAIT_SPIN_MS = 0.2;
/** A helper that has not finished a block it claimed after this long has stopped: the step fails rather than hang. */
const STALL_MS = 30_000;
const FILE = 'workers/training/product-helpers.ts';
/**
 * For tests: the calling thread claims no block, so that every block of a shared call is a
 * helper's and a test of the bits cannot pass by the calling thread having done it all
 * (test/workers/training/threads.test.ts). Never set in a service.
 */
const HELPERS_TAKE_ALL = process.env.PRODUCT_HELPERS_TAKE_ALL === '1';

// The control words, Int32: the call asked (a number that changes with each, to wake the
// helpers); the blocks not yet claimed, from the front (high 16 bits) to the back (low 16 bits),
// CLOSED while the call changes; the blocks helpers finished of this call; 1 once a helper
// failed; the blocks helpers finished since they started (for tests); the kernel (KINDS); columns
// a block; the call's count of arguments. Then the arguments as float64 (offsets, counts and an update's float32 factors
// alike, exactly).
const ASKED = 0;
const RANGE = 1;
const DONE = 2;
const FAILED = 3;
const TOTAL = 4;
const KIND = 5;
const COLUMNS = 6;
const ARG_COUNT = 7;
const WORDS = 8;
const MAX_ARGS = 12;
/** front 0xffff, back 0xffff: nothing to claim */
const CLOSED = -1;

/** Runs block `block` of the call described by `ctl` and `args` with `fns` (the module's exports by KINDS). */
function runBlock(fns: ((...a: number[]) => void)[], ctl: Int32Array, args: Float64Array, block: number, call: number[]): void {
  const kind = KINDS[ctl[KIND]];
  const columns = ctl[COLUMNS];
  const first = block * columns;
  for (let i = 0; i < call.length; i++) call[i] = args[i];
  for (const i of kind.offsets) if (call[i] !== 0) call[i] += first * 4;
  call[kind.columns] = Math.min(columns, args[kind.columns] - first);
  fns[ctl[KIND]](...call);
}

/**
 * A helper's loop. A block is claimed by compare-and-swap on RANGE while it still holds the value
 * read; the calling thread closes RANGE before it rewrites the call and opens it after, so a
 * claim that succeeds is of the call whose arguments it then reads.
 */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { memory, module, ctl, args } = workerData;
const KINDS = ${JSON.stringify(KINDS)};
const KIND = ${KIND};
const COLUMNS = ${COLUMNS};
const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
const fns = KINDS.map((k) => exports[k.name]);
${runBlock.toString()}
let seen = 0;
for (;;) {
  const since = performance.now();
  for (let spins = 0; Atomics.load(ctl, ${ASKED}) === seen; ) {
    if ((++spins & 255) === 0 && performance.now() - since > ${SPIN_MS}) Atomics.wait(ctl, ${ASKED}, seen);
  }
  seen = Atomics.load(ctl, ${ASKED});
  for (;;) {
    const range = Atomics.load(ctl, ${RANGE});
    const back = range & 0xffff;
    if (back <= range >>> 16) break;
    if (Atomics.compareExchange(ctl, ${RANGE}, range, range - 1) !== range) continue;
    try {
      runBlock(fns, ctl, args, back - 1, new Array(ctl[${ARG_COUNT}]));
    } catch (err) {
      Atomics.store(ctl, ${FAILED}, 1);
      console.error('${FILE}: a helper thread failed:', err);
    }
    Atomics.add(ctl, ${TOTAL}, 1);
    Atomics.add(ctl, ${DONE}, 1);
    Atomics.notify(ctl, ${DONE});
  }
}`;

class Helpers {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(WORDS * 4));
  private readonly args = new Float64Array(new SharedArrayBuffer(MAX_ARGS * 8));
  private readonly fns: ((...a: number[]) => void)[];
  private asked = 0;

  constructor(kernels: WasmKernels, o: { memory: WebAssembly.Memory; module: WebAssembly.Module; helpers: number }) {
    this.fns = KINDS.map((k) => kernels[k.name]);
    for (let i = 0; i < o.helpers; i++) {
      const workerData = { memory: o.memory, module: o.module, ctl: this.ctl, args: this.args };
      // the helpers only compute for this thread, which holds the process open itself while it has work
      new Worker(HELPER_SOURCE, { eval: true, workerData }).unref();
    }
  }

  /** Blocks the helpers have computed since they started. */
  helped(): number {
    return Atomics.load(this.ctl, TOTAL);
  }

  /** Runs KINDS[kind] with `args` in blocks of `columns` columns, shared with the helpers. */
  split(kind: number, args: number[], columns: number): void {
    const { ctl } = this;
    const blocks = Math.ceil(args[KINDS[kind].columns] / columns);
    Atomics.store(ctl, RANGE, CLOSED);
    ctl[KIND] = kind;
    ctl[COLUMNS] = columns;
    this.args.set(args);
    ctl[ARG_COUNT] = args.length;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, RANGE, blocks);
    Atomics.store(ctl, ASKED, (this.asked = (this.asked + 1) | 0));
    Atomics.notify(ctl, ASKED);
    let mine = 0;
    const call = args.slice();
    while (!HELPERS_TAKE_ALL) {
      const range = Atomics.load(ctl, RANGE);
      const front = range >>> 16;
      if ((range & 0xffff) <= front) break;
      if (Atomics.compareExchange(ctl, RANGE, range, range + 0x10000) !== range) continue;
      runBlock(this.fns, ctl, this.args, front, call);
      mine++;
    }
    this.waitForHelpers(blocks - mine);
  }

  /** Waits until the helpers have finished `blocks` blocks of this call. */
  private waitForHelpers(blocks: number): void {
    const { ctl } = this;
    const since = performance.now();
    for (let done = Atomics.load(ctl, DONE); done < blocks; done = Atomics.load(ctl, DONE)) {
      if (Atomics.load(ctl, FAILED) !== 0) throw new Error(`${FILE}: a helper thread failed (its error is above); the step cannot go on`);
      const waited = performance.now() - since;
      // a helper descheduled mid-block (or on this thread's core): sleep rather than spin it out
      if (waited > WAIT_SPIN_MS) Atomics.wait(ctl, DONE, done, 1);
      if (waited > STALL_MS) throw new Error(`${FILE}: a helper thread has not finished its block after ${STALL_MS / 1000} s; the step cannot go on`);
    }
  }
}

/** Columns a block: at least BLOCK_COLUMNS, more when `perColumn` (multiply-adds or values a column) is small, and fewer blocks than RANGE's 16 bits count. */
function blockColumns(columns: number, perColumn: number): number {
  return BLOCK_COLUMNS * Math.max(1, Math.floor(BLOCK_TERMS / perColumn / BLOCK_COLUMNS), Math.ceil(columns / BLOCK_COLUMNS / 0x7fff));
}

const helpersByMemory = new WeakMap<WebAssembly.Memory, Helpers>();
/** The variables whose updates the dense step shares, with the helpers to share them with. */
const sharedVariables = new WeakMap<tf.Variable, Helpers>();

/** The dense step's kernels, shared with `threads - 1` helpers when `memory` is shared (the threaded build). */
export interface SharedKernels {
  matMul: MatMul;
  /** Makes the optimizer's update of each of `variables` (matrices) shared too (runUpdate). */
  shareUpdates(variables: tf.Variable[]): void;
}

/**
 * The dense step's kernels: `kernels.matMul` with its large products shared by `threads - 1`
 * helpers when `memory` is shared (the threaded build), `kernels.matMul` itself otherwise. The
 * helpers are started once a memory (a process) and instantiate `module`, the kernels' own
 * compiled module.
 */
export function sharedKernels(kernels: WasmKernels, o: { memory: WebAssembly.Memory; module: WebAssembly.Module; threads: number }): SharedKernels {
  if (!(o.memory.buffer instanceof SharedArrayBuffer) || o.threads < 2) return { matMul: kernels.matMul, shareUpdates: () => undefined };
  let helpers = helpersByMemory.get(o.memory);
  if (helpers === undefined) {
    helpers = new Helpers(kernels, { memory: o.memory, module: o.module, helpers: o.threads - 1 });
    helpersByMemory.set(o.memory, helpers);
  }
  const shared = helpers;
  return {
    matMul: (...args) => {
      const [, , , , m, k, n] = args;
      if (m * k * n < SHARE_MIN_TERMS || n < SHARE_MIN_COLUMNS) return kernels.matMul(...args);
      shared.split(0, args, blockColumns(n, m * k));
    },
    shareUpdates: (variables) => {
      for (const v of variables) if (v.shape.length === 2 && v.shape[1] >= SHARE_MIN_COLUMNS && v.size >= SHARE_MIN_TERMS / 4) sharedVariables.set(v, shared);
    },
  };
}

/**
 * Runs update kernel `name` (its arguments before `rows` and `ld`, the count being all of
 * `variable`'s values) over `variable`: by blocks of columns shared with the helpers when the
 * dense step shares its updates, in one call otherwise. fused-update.ts's passes run here.
 */
export function runUpdate(kernels: WasmKernels, name: UpdateName, variable: tf.Variable, args: number[]): void {
  const helpers = sharedVariables.get(variable);
  const kind = KINDS.findIndex((k) => k.name === name);
  if (helpers === undefined) {
    const update: (...a: number[]) => void = kernels[name];
    return update(...args, 1, variable.size);
  }
  const [rows, columns] = variable.shape as [number, number];
  const call = args.slice();
  call[KINDS[kind].columns] = columns;
  // BLOCK_COLUMNS, as the products of a batch on these weights mostly have: the same columns then tend to stay on the same thread
  helpers.split(kind, [...call, rows, columns], BLOCK_COLUMNS);
}

/** Blocks the helpers on `memory` have computed since they started (0 without helpers): tests check that the work was shared. */
export function blocksHelped(memory: WebAssembly.Memory): number {
  return helpersByMemory.get(memory)?.helped() ?? 0;
}
