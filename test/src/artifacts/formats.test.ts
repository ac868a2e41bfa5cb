import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { FORMAT_NAMES, FORMATS, formatTable } from '../../../src/artifacts/ingest/formats.js';
import { UploadDatasetForm } from '../../../src/schemas/dataset.js';
import { PROJECT_ROOT } from '../../../src/paths.js';

test('docs/datasets.md shows the format registry as it is', () => {
  const doc = readFileSync(`${PROJECT_ROOT}/docs/datasets.md`, 'utf8');
  assert.ok(doc.includes(formatTable()), 'docs/datasets.md lacks the current table: paste formatTable() between the format-table markers');
});

test('the OpenAPI form documents every format, file and option of the registry', () => {
  const props = UploadDatasetForm.properties as Record<string, { anyOf?: Array<{ const: string }> }>;
  assert.deepEqual(
    props.format.anyOf!.map((f) => f.const),
    FORMAT_NAMES,
  );
  for (const name of FORMAT_NAMES) {
    for (const field of [...Object.keys(FORMATS[name].files), ...FORMATS[name].options])
      assert.ok(field in props, `${name}: ${field} is not in UploadDatasetForm`);
  }
});
