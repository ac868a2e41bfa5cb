/** Reads a text file line by line through one reusable buffer (LF or CRLF endings). */
import { readSync } from 'node:fs';
import { IngestError } from './ingest-error.js';

const CHUNK = 1 << 20;
/** a line longer than this is not one example (a file without line ends, say) */
const MAX_LINE_BYTES = 64 << 20;

export class LineReader {
  private buf = Buffer.allocUnsafe(2 * CHUNK);
  private start = 0;
  private end = 0;
  private eof = false;
  /** number of the line last returned, from 1 */
  line = 0;

  constructor(
    private readonly fd: number,
    private readonly field: string,
  ) {}

  /** The next line without its ending, or null at the end of the file. */
  next(): string | null {
    for (;;) {
      const lf = this.buf.indexOf(10, this.start);
      if (lf >= 0 && lf < this.end) {
        const text = this.take(lf);
        this.start = lf + 1;
        return text;
      }
      if (this.eof) {
        if (this.start === this.end) return null;
        const text = this.take(this.end);
        this.start = this.end;
        return text;
      }
      this.fill();
    }
  }

  private take(stop: number): string {
    this.line++;
    let end = stop;
    if (end > this.start && this.buf[end - 1] === 13) end--;
    // a UTF-8 byte order mark is not part of the first line
    const start =
      this.line === 1 && this.buf[this.start] === 0xef && this.buf[this.start + 1] === 0xbb && this.buf[this.start + 2] === 0xbf ? this.start + 3 : this.start;
    return this.buf.toString('utf8', start, end);
  }

  private fill(): void {
    const pending = this.end - this.start;
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.start = 0;
      this.end = pending;
    }
    if (this.buf.length - this.end < CHUNK) {
      if (this.end >= MAX_LINE_BYTES) {
        throw new IngestError('line_too_long', `line ${this.line + 1} goes on for more than ${MAX_LINE_BYTES} bytes; expected one example per line`, {
          field: this.field,
          line: this.line + 1,
        });
      }
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
    const n = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null);
    if (n === 0) this.eof = true;
    this.end += n;
  }
}
