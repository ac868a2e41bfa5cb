/** Reads a text file line by line through one reusable buffer (LF or CRLF endings). */
import { BufferedFile } from './buffered-file.js';

export class LineReader extends BufferedFile {
  /** number of the line last returned, from 1 */
  line = 0;

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

  protected itemLine(): number {
    return this.line + 1;
  }
}
