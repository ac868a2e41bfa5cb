/** Reads a file, gunzipping it when it starts with the gzip magic, in exact-size pieces. */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { IngestError } from './ingest-error.js';

const EMPTY = Buffer.alloc(0);

export function isGzip(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

export class ByteStream {
  /** bytes handed out so far (after decompression) */
  offset = 0;
  private readonly chunks: AsyncIterator<Buffer>;
  private chunk: Buffer = EMPTY;
  private pos = 0;
  private done = false;
  readonly gzipped: boolean;
  private readonly stream: NodeJS.ReadableStream & { destroy(): void };

  constructor(
    file: string,
    private readonly field: string,
  ) {
    this.gzipped = isGzip(file);
    const raw = createReadStream(file, { highWaterMark: 1 << 20 });
    if (this.gzipped) {
      const gunzip = createGunzip({ chunkSize: 1 << 20 });
      raw.on('error', (err) => gunzip.destroy(err));
      this.stream = raw.pipe(gunzip);
    } else {
      this.stream = raw;
    }
    this.chunks = (this.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    let next: IteratorResult<Buffer>;
    try {
      next = await this.chunks.next();
    } catch (err) {
      if (this.gzipped) {
        throw new IngestError(
          'corrupt_gzip',
          `${this.field} is gzip-compressed but cannot be decompressed after ${this.offset} bytes (${(err as Error).message})`,
          {
            field: this.field,
          },
        );
      }
      throw err;
    }
    if (next.done) {
      this.done = true;
      return false;
    }
    this.chunk = next.value;
    this.pos = 0;
    return true;
  }

  /** Fills `dst` as far as the data goes; returns how many bytes it got (fewer only at the end). */
  async read(dst: Uint8Array): Promise<number> {
    let got = 0;
    while (got < dst.length) {
      if (this.pos === this.chunk.length && !(await this.fill())) break;
      const n = Math.min(dst.length - got, this.chunk.length - this.pos);
      dst.set(this.chunk.subarray(this.pos, this.pos + n), got);
      this.pos += n;
      got += n;
    }
    this.offset += got;
    return got;
  }

  /** Counts the bytes left, reading them to the end. */
  async remaining(): Promise<number> {
    let left = this.chunk.length - this.pos;
    this.pos = this.chunk.length;
    while (await this.fill()) {
      left += this.chunk.length;
      this.pos = this.chunk.length;
    }
    return left;
  }

  close(): void {
    this.stream.destroy();
  }
}
