/**
 * A text file read through one reusable buffer, for the line and CSV readers: the bytes not yet
 * consumed are buf[start, end); fill() slides them to the front and reads more, growing the
 * buffer when one item (a line, a record) outgrows it, up to MAX_ITEM_BYTES.
 */
import { readSync } from 'node:fs';
import { IngestError } from './ingest-error.js';

const CHUNK = 1 << 20;
/** a line or record longer than this is not one example (a file without line ends, say) */
export const MAX_ITEM_BYTES = 64 << 20;

export abstract class BufferedFile {
  protected buf = Buffer.allocUnsafe(2 * CHUNK);
  protected start = 0;
  protected end = 0;
  protected eof = false;

  constructor(
    private readonly fd: number,
    /** the form field the file came in, for errors */
    protected readonly field: string,
  ) {}

  /** The line where the item being read starts, from 1, for the error when it is too long. */
  protected abstract itemLine(): number;

  protected fill(): void {
    const pending = this.end - this.start;
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.start = 0;
      this.end = pending;
    }
    if (this.buf.length - this.end < CHUNK) {
      if (this.end >= MAX_ITEM_BYTES) {
        const line = this.itemLine();
        throw new IngestError('line_too_long', `line ${line} goes on for more than ${MAX_ITEM_BYTES} bytes; expected one example per line`, {
          field: this.field,
          line,
        });
      }
      // one item longer than the buffer: grow it (items are rows, rarely this long)
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
    const n = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null);
    if (n === 0) this.eof = true;
    this.end += n;
  }
}
