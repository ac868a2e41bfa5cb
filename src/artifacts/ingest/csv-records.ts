/**
 * Splits CSV (RFC 4180: comma-separated, "quoted" values with "" for a quote, CRLF or LF) into
 * records straight from file bytes, without making a string per cell: a generic CSV parser
 * spends most of its time allocating, and numeric datasets are millions of cells.
 */
import { BufferedFile } from './buffered-file.js';
import { IngestError } from './ingest-error.js';

const COMMA = 44;
const QUOTE = 34;
const LF = 10;
const CR = 13;

/** One record: cell k is bytes[starts[k], ends[k]) of `bytes`, or texts[k] when it was quoted. */
export interface CsvRecord {
  /** line of the file where the record starts, from 1 */
  line: number;
  count: number;
  bytes: Buffer;
  starts: Int32Array;
  ends: Int32Array;
  texts: Array<string | undefined>;
}

export class CsvRecords extends BufferedFile {
  private line = 1;
  private first = true;
  private readonly record: CsvRecord = { line: 1, count: 0, bytes: this.buf, starts: new Int32Array(256), ends: new Int32Array(256), texts: [] };

  /** The cell as text (quoted cells unescaped). */
  text(k: number): string {
    const r = this.record;
    return r.texts[k] ?? r.bytes.toString('utf8', r.starts[k], r.ends[k]);
  }

  /** The next record, or null at the end of the file. The record is reused by the next call. */
  next(): CsvRecord | null {
    for (;;) {
      if (this.start === this.end && this.eof) return null;
      const after = this.scan();
      if (after >= 0) {
        this.start = after;
        return this.record;
      }
      this.fill();
    }
  }

  protected itemLine(): number {
    return this.line;
  }

  protected override fill(): void {
    super.fill();
    this.record.bytes = this.buf;
    if (this.first && this.end >= 3) {
      this.first = false;
      if (this.buf[0] === 0xef && this.buf[1] === 0xbb && this.buf[2] === 0xbf) this.start = 3;
    }
  }

  /** Scans one record from `start`; returns where the next begins, or -1 if more bytes are needed. */
  private scan(): number {
    const b = this.buf;
    const end = this.end;
    const eof = this.eof;
    const r = this.record;
    if (this.first && !eof) return -1;
    let i = this.start;
    let f = 0;
    let newlines = 0;
    for (;;) {
      if (f === r.starts.length) {
        const starts = new Int32Array(f * 2);
        starts.set(r.starts);
        const ends = new Int32Array(f * 2);
        ends.set(r.ends);
        r.starts = starts;
        r.ends = ends;
      }
      if (i < end && b[i] === QUOTE) {
        let j = i + 1;
        let segment = j;
        let text = '';
        for (;;) {
          if (j >= end) {
            if (!eof) return -1;
            throw new IngestError('unterminated_quote', `line ${this.line}, column ${f + 1}: a quoted value is never closed; expected a closing "`, {
              field: this.field,
              line: this.line,
              column: f + 1,
            });
          }
          const c = b[j];
          if (c === QUOTE) {
            if (j + 1 >= end && !eof) return -1;
            if (b[j + 1] === QUOTE) {
              text += b.toString('utf8', segment, j + 1);
              j += 2;
              segment = j;
              continue;
            }
            text += b.toString('utf8', segment, j);
            j++;
            break;
          }
          if (c === LF) newlines++;
          j++;
        }
        r.texts[f] = text;
        r.starts[f] = 0;
        r.ends[f] = 0;
        i = j;
        if (i < end && b[i] !== COMMA && b[i] !== LF && b[i] !== CR) {
          throw new IngestError(
            'bad_quote',
            `line ${this.line + newlines}, column ${f + 1}: text follows a closing quote; expected a comma or the end of the line`,
            {
              field: this.field,
              line: this.line + newlines,
              column: f + 1,
            },
          );
        }
      } else {
        let j = i;
        while (j < end) {
          const c = b[j];
          if (c === COMMA || c === LF || c === CR) break;
          j++;
        }
        if (j >= end && !eof) return -1;
        r.starts[f] = i;
        r.ends[f] = j;
        r.texts[f] = undefined;
        i = j;
      }
      f++;
      if (i >= end) break;
      const c = b[i];
      if (c === COMMA) {
        i++;
        continue;
      }
      if (c === CR) {
        if (i + 1 >= end && !eof) return -1;
        i++;
        if (i < end && b[i] === LF) i++;
      } else {
        i++;
      }
      newlines++;
      break;
    }
    r.line = this.line;
    r.count = f;
    this.line += newlines;
    return i;
  }

  /** True for a line with nothing on it (skipped, like a final newline). */
  blank(): boolean {
    const r = this.record;
    if (r.count !== 1 || r.texts[0] !== undefined) return false;
    for (let i = r.starts[0]; i < r.ends[0]; i++) {
      const c = r.bytes[i];
      if (c !== 32 && c !== 9) return false;
    }
    return true;
  }
}
