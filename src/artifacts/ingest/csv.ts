/** CSV uploads: a header row, one example per row, numeric feature columns and a label column. */
import { closeSync, openSync } from 'node:fs';
import { CsvRecords } from './csv-records.js';
import { DatasetWriter } from './dataset-writer.js';
import { IngestError } from './ingest-error.js';
import type { CsvJob, IngestResult } from './job.js';
import { emptyClassProblem, LabelSet } from './label-set.js';
import { parseNumberText, parseSimpleNumber } from './number-text.js';

const FIELD = 'file';

export function ingestCsv(job: CsvJob): IngestResult {
  const fd = openSync(job.file, 'r');
  let writer: DatasetWriter | undefined;
  try {
    const records = new CsvRecords(fd, FIELD);
    let header = records.next();
    while (header && records.blank()) header = records.next();
    if (!header)
      throw new IngestError('empty', 'the file is empty; expected a header row naming the columns, then one row per example', { field: FIELD, line: 1 });
    const headerLine = header.line;
    const names = Array.from({ length: header.count }, (_, k) => records.text(k).trim());
    const seen = new Map<string, number>();
    names.forEach((name, k) => {
      const where = { field: FIELD, line: headerLine, column: k + 1 };
      if (name === '')
        throw new IngestError('bad_header', `line ${headerLine}, column ${k + 1}: the header has an empty column name; every column needs a name`, where);
      const earlier = seen.get(name);
      if (earlier !== undefined) {
        throw new IngestError(
          'bad_header',
          `line ${headerLine}, column ${k + 1}: column name ${JSON.stringify(name)} repeats column ${earlier + 1}; names must be unique`,
          {
            ...where,
            columnName: name,
          },
        );
      }
      seen.set(name, k);
    });
    const labelAt = seen.get(job.labelColumn);
    if (labelAt === undefined) {
      const shown =
        names
          .slice(0, 20)
          .map((n) => JSON.stringify(n))
          .join(', ') + (names.length > 20 ? ', ...' : '');
      throw new IngestError(
        'label_column_missing',
        `line ${headerLine}: no column is named ${JSON.stringify(job.labelColumn)} (the labelColumn); the header has ${shown}`,
        {
          field: FIELD,
          line: headerLine,
        },
      );
    }
    const featureSize = names.length - 1;
    if (featureSize === 0) {
      throw new IngestError(
        'no_features',
        `line ${headerLine}: the only column is the label column ${JSON.stringify(job.labelColumn)}; expected feature columns beside it`,
        {
          field: FIELD,
          line: headerLine,
        },
      );
    }
    checkImageShape(job.imageShape, featureSize, headerLine);

    // slot position of each column; the label column has none
    const position = new Int32Array(names.length);
    for (let k = 0, p = 0; k < names.length; k++) position[k] = k === labelAt ? -1 : p++;
    writer = new DatasetWriter({ dir: job.outDir, featureSize, dtype: 'float32', narrow: true, limit: job.limit, field: FIELD });
    const labels = new LabelSet(job.classes);
    let row = 0;
    for (let r = records.next(); r; r = records.next()) {
      if (records.blank()) continue;
      row++;
      const at = (k: number) => ({ field: FIELD, line: r.line, row, column: k + 1, columnName: names[k] });
      if (r.count !== names.length) {
        const k = Math.min(r.count, names.length);
        const detail =
          r.count < names.length
            ? `has ${r.count} values but the header has ${names.length} columns (missing a value for column ${k + 1}, ${JSON.stringify(names[k])})`
            : `has ${r.count} values but the header has ${names.length} columns (column ${k + 1} is one too many)`;
        throw new IngestError(
          'ragged',
          `line ${r.line} (row ${row}) ${detail}`,
          r.count < names.length ? at(k) : { field: FIELD, line: r.line, row, column: k + 1 },
        );
      }
      const slot = writer.slot();
      for (let k = 0; k < r.count; k++) {
        const p = position[k];
        if (p < 0) continue;
        let v = r.texts[k] === undefined ? parseSimpleNumber(r.bytes, r.starts[k], r.ends[k]) : NaN;
        if (Number.isNaN(v)) {
          const parsed = parseNumberText(records.text(k));
          if (typeof parsed !== 'number') {
            throw new IngestError(parsed.code, `line ${r.line} (row ${row}), column ${k + 1} (${JSON.stringify(names[k])}) ${parsed.message}`, at(k));
          }
          v = parsed;
        }
        slot[p] = v;
      }
      const label = records.text(labelAt).trim();
      if (label === '') {
        throw new IngestError(
          'missing_value',
          `line ${r.line} (row ${row}), column ${labelAt + 1} (${JSON.stringify(job.labelColumn)}): the label is empty; every row needs one`,
          at(labelAt),
        );
      }
      const index = labels.index(label);
      if (typeof index !== 'number') throw new IngestError(index.code, `line ${r.line} (row ${row}), column ${labelAt + 1}: ${index.message}`, at(labelAt));
      writer.commit(index);
    }
    if (writer.count === 0) {
      throw new IngestError('empty', `the file has a header but no data rows; expected one row per example after line ${headerLine}`, {
        field: FIELD,
        line: headerLine + 1,
      });
    }
    const { classes, mapping } = labels.finish();
    const written = writer.finish(mapping, classes.length);
    writer = undefined;
    const empty = emptyClassProblem(classes, written.classCounts, labels.isDeclared);
    if (empty) throw new IngestError('class_without_examples', empty.message, { field: FIELD, class: empty.class });
    return {
      numExamples: written.numExamples,
      featureShape: [featureSize],
      featureDtype: written.featureDtype,
      imageShape: job.imageShape ?? null,
      classes,
      classCounts: written.classCounts,
      preprocessing: job.preprocessing ?? { scale: 1, offset: 0 },
    };
  } finally {
    writer?.abort();
    closeSync(fd);
  }
}

/** A declared image shape has to account for every feature, or images would be drawn wrong. */
export function checkImageShape(imageShape: number[] | undefined, featureSize: number, line: number): void {
  if (!imageShape) return;
  const size = imageShape.reduce((a, b) => a * b, 1);
  if (size !== featureSize) {
    throw new IngestError('image_shape_mismatch', `imageShape [${imageShape.join(', ')}] holds ${size} values but each example has ${featureSize} features`, {
      field: FIELD,
      line,
    });
  }
}
