/**
 * Preprocesses a batch of one-channel uint8 examples through the float32 values of the 256
 * bytes (the Batcher's table) in a kernel of ours (wasm-kernels.wat byteTable), on a WebAssembly
 * memory of its own that holds the batch's bytes and its values: whichever the backend. The
 * Batcher's JavaScript loop over the table took 0.10 ms of the seed MLP's 0.8 ms step on wasm.
 * The same bits as that loop (test/workers/training/data.test.ts).
 */
import { kernelsOn, type WasmKernels } from './wasm-kernels.js';

const PAGE = 65536;
/** A batch larger than this (bytes and values together) stays with the JavaScript loop: the memory is held for the Batcher's life. */
const MAX_BYTES = 64 << 20;

export class ByteLookup {
  /** the batch's values, batchSize × featureSize: what convert() writes */
  readonly x: Float32Array;
  private readonly bytes: Uint8Array;
  private readonly kernels: WasmKernels;
  private readonly offsets: { table: number; bytes: number; x: number };

  private constructor(
    table: Float64Array,
    batchSize: number,
    private readonly featureSize: number,
  ) {
    const n = batchSize * featureSize;
    // table, then the values (4-byte aligned after it), then the bytes
    this.offsets = { table: 0, x: 256 * 4, bytes: 256 * 4 + n * 4 };
    const memory = new WebAssembly.Memory({ initial: Math.ceil((this.offsets.bytes + n) / PAGE) });
    new Float32Array(memory.buffer, 0, 256).set(table);
    this.x = new Float32Array(memory.buffer, this.offsets.x, n);
    this.bytes = new Uint8Array(memory.buffer, this.offsets.bytes, n);
    this.kernels = kernelsOn(memory, { fused: false });
  }

  /** A lookup for batches of `batchSize` examples of `featureSize` bytes, or undefined when they are too large to keep. */
  static for(table: Float64Array, batchSize: number, featureSize: number): ByteLookup | undefined {
    return 256 * 4 + batchSize * featureSize * 5 <= MAX_BYTES ? new ByteLookup(table, batchSize, featureSize) : undefined;
  }

  /** Puts example `row`'s bytes in place. */
  put(row: number, values: Uint8Array): void {
    this.bytes.set(values, row * this.featureSize);
  }

  /** Writes the values of the first `rows` examples put into x. */
  convert(rows: number): void {
    this.kernels.byteTable(this.offsets.bytes, this.offsets.table, this.offsets.x, rows * this.featureSize);
  }
}
