/**
 * Why a dataset failed, and where in its files: its own file because the conversion code of
 * src/artifacts/ingest raises it, and the dataset schema imports the upload-format registry there.
 */
import { Type, type Static } from '@sinclair/typebox';

export const DatasetErrorLocation = Type.Object(
  {
    field: Type.Optional(Type.String({ description: 'the upload field holding the bad data: file, images or labels' })),
    line: Type.Optional(Type.Integer({ description: 'CSV, JSONL: line in the file, from 1 (the CSV header is line 1)' })),
    row: Type.Optional(Type.Integer({ description: 'CSV: data row, from 1 (header excluded)' })),
    column: Type.Optional(Type.Integer({ description: 'CSV: column number from 1; JSONL: character column from 1' })),
    columnName: Type.Optional(Type.String({ description: 'CSV: the header of that column' })),
    pointer: Type.Optional(Type.String({ description: 'JSONL: JSON pointer inside the line, e.g. /x/3' })),
    entry: Type.Optional(Type.String({ description: 'archive entry name' })),
    index: Type.Optional(Type.Integer({ description: 'IDX: item index, from 0' })),
    class: Type.Optional(Type.String({ description: 'the class concerned' })),
    expected: Type.Optional(Type.Integer()),
    found: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);
export type DatasetErrorLocation = Static<typeof DatasetErrorLocation>;

export const DatasetError = Type.Object(
  {
    code: Type.String({ description: 'e.g. ragged, not_numeric, not_finite, invalid_json, count_mismatch, corrupt_image, class_without_examples, empty' }),
    message: Type.String({ description: 'what was wrong, where, and what was expected' }),
    location: Type.Optional(DatasetErrorLocation),
  },
  { description: 'why a dataset failed' },
);
export type DatasetError = Static<typeof DatasetError>;
