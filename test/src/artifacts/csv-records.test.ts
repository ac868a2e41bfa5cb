import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { MAX_ITEM_BYTES } from '../../../src/artifacts/ingest/buffered-file.js';
import { CsvRecords } from '../../../src/artifacts/ingest/csv-records.js';
import { IngestError } from '../../../src/artifacts/ingest/ingest-error.js';
import { LineReader } from '../../../src/artifacts/ingest/line-reader.js';
import { parseNumberText, parseSimpleNumber } from '../../../src/artifacts/ingest/number-text.js';

const dir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-csv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A deterministic CSV of several megabytes, so records straddle the reader's 1 MB chunks. */
function sample(): string {
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const cell = () => {
    const r = random();
    if (r < 0.05) return `"quoted, with a comma"`;
    if (r < 0.08) return `"two\nlines and a "" quote"`;
    if (r < 0.1) return '';
    return String(Math.floor(random() * 100000) / 100);
  };
  const rows: string[] = ['a,b,c,d,e'];
  let size = 0;
  while (size < 3_500_000) {
    const row = Array.from({ length: 5 }, cell).join(',');
    rows.push(row);
    size += row.length + 2;
  }
  return '\ufeff' + rows.join(size % 2 ? '\r\n' : '\n') + '\r\n';
}

test('CsvRecords splits like csv-parse, across chunk boundaries, with quotes, newlines in quotes and CRLF', () => {
  const text = sample();
  const file = join(dir, 'sample.csv');
  writeFileSync(file, text);
  const expected = parse(text, { bom: true, relax_column_count: true, record_delimiter: ['\r\n', '\n'] }) as string[][];
  const fd = openSync(file, 'r');
  try {
    const records = new CsvRecords(fd, 'file');
    const got: string[][] = [];
    const lines: number[] = [];
    for (let r = records.next(); r; r = records.next()) {
      got.push(Array.from({ length: r.count }, (_, k) => records.text(k)));
      lines.push(r.line);
    }
    assert.equal(got.length, expected.length);
    assert.deepEqual(got, expected);
    // line numbers count the newlines inside quoted values
    let line = 1;
    for (let i = 0; i < got.length; i++) {
      assert.equal(lines[i], line, `record ${i}`);
      line += 1 + got[i].join(',').split('\n').length - 1;
    }
  } finally {
    closeSync(fd);
  }
});

test('LineReader returns every line across chunk boundaries, without CR and BOM', () => {
  const lines = Array.from({ length: 40_000 }, (_, i) => `{"x": [${i}, ${i * 2}], "y": "${'z'.repeat(i % 70)}"}`);
  const file = join(dir, 'lines.jsonl');
  writeFileSync(file, '\ufeff' + lines.join('\r\n'));
  const fd = openSync(file, 'r');
  try {
    const reader = new LineReader(fd, 'file');
    const got: string[] = [];
    for (let l = reader.next(); l !== null; l = reader.next()) got.push(l);
    assert.deepEqual(got, lines);
    assert.equal(reader.line, lines.length);
  } finally {
    closeSync(fd);
  }
});

test('both readers grow their buffer for a line longer than it, and refuse one longer than MAX_ITEM_BYTES, naming its line', () => {
  const long = '7'.repeat(5 << 20);
  const grown = join(dir, 'grown.csv');
  writeFileSync(grown, `a\n${long}\nb\n`);
  const tooLong = join(dir, 'too-long.csv');
  writeFileSync(tooLong, `a\nb\n${'7'.repeat(MAX_ITEM_BYTES + 1)}`);
  const readers = {
    csv: (fd: number) => {
      const records = new CsvRecords(fd, 'file');
      return () => (records.next() === null ? null : records.text(0));
    },
    lines: (fd: number) => {
      const lines = new LineReader(fd, 'file');
      return () => lines.next();
    },
  };
  for (const [name, open] of Object.entries(readers)) {
    const fd = openSync(grown, 'r');
    try {
      const next = open(fd);
      assert.deepEqual([next(), next() === long, next(), next()], ['a', true, 'b', null], name);
    } finally {
      closeSync(fd);
    }
    const fd2 = openSync(tooLong, 'r');
    try {
      const next = open(fd2);
      assert.deepEqual([next(), next()], ['a', 'b'], name);
      assert.throws(
        next,
        (err: unknown) => err instanceof IngestError && err.code === 'line_too_long' && /^line 3 goes on for more than/.test(err.message),
        name,
      );
    } finally {
      closeSync(fd2);
    }
  }
});

test('numbers: the fast path agrees with Number(), the strict path refuses what is not a decimal', () => {
  for (const t of ['0', '7', '-3', '+2.5', '0.125', '123456.789', '255', '-0.0001', '1.']) {
    const bytes = Buffer.from(t);
    assert.equal(parseSimpleNumber(bytes, 0, bytes.length), Number(t), t);
  }
  for (const t of ['1e3', '', '-', '.', '1.2.3', '0x10', '12345678901234567']) {
    const bytes = Buffer.from(t);
    assert.ok(Number.isNaN(parseSimpleNumber(bytes, 0, bytes.length)), `${t} leaves the fast path`);
  }
  assert.equal(parseNumberText(' 1e3 '), 1000);
  assert.equal(parseNumberText('.5'), 0.5);
  assert.deepEqual(parseNumberText(''), { code: 'missing_value', message: 'is empty; expected a number' });
  for (const t of ['NaN', '-inf', 'Infinity']) assert.equal((parseNumberText(t) as { code: string }).code, 'not_finite', t);
  for (const t of ['0x10', 'abc', '1,5', '1e']) assert.equal((parseNumberText(t) as { code: string }).code, 'not_numeric', t);
  assert.equal((parseNumberText('4e38') as { code: string }).code, 'not_finite');
});
