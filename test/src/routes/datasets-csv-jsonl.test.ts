import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startApi, type Api } from '../../helpers/api.js';
import { waitFor } from '../../helpers/harness.js';
import { no5xx, postForm, settled, uploadDataset } from '../artifacts/fixtures.js';

let h: Api;
const UPLOAD_LIMIT = 64 * 1024;

before(async () => {
  h = await startApi({ UPLOAD_LIMIT_BYTES: String(UPLOAD_LIMIT) });
});
after(() => h?.stop());

const csv = (text: string, fields: Record<string, string> = {}) =>
  uploadDataset(h, { name: 'c', format: 'csv', ...fields }, [{ field: 'file', content: text, filename: 'data.csv' }]);
const jsonl = (text: string, fields: Record<string, string> = {}) =>
  uploadDataset(h, { name: 'j', format: 'jsonl', ...fields }, [{ field: 'file', content: text, filename: 'data.jsonl' }]);

/** A failed dataset whose error has `code` and a location including `where`. */
function assertFailed(d: any, code: string, where: Record<string, unknown>) {
  assert.equal(d.status, 'failed', JSON.stringify(d));
  assert.equal(d.error.code, code, JSON.stringify(d.error));
  for (const [k, v] of Object.entries(where)) assert.deepEqual(d.error.location?.[k], v, `location.${k} in ${JSON.stringify(d.error)}`);
  assert.ok(d.error.message.length > 20, d.error.message);
  assert.equal(d.numExamples, null);
}

/** No converted files and no upload left behind by failures. */
function assertNoLeftovers(id: string) {
  const root = join(h.dataDir, 'artifacts');
  assert.ok(!readdirSync(join(root, 'datasets')).some((f) => f.startsWith(id)), `files of ${id} left in datasets/`);
  assert.ok(!readdirSync(join(root, 'uploads')).some((f) => f.startsWith(id)), `files of ${id} left in uploads/`);
}

describe('csv', () => {
  test('string labels, quoted cells, CRLF: ready with classes sorted and counted', async () => {
    const d = await csv('x1,"x 2",label\r\n1.5,-2,dog\r\n0.25,"3e2",cat\r\n\r\n-7,8,dog\r\n');
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.equal(d.numExamples, 3);
    assert.deepEqual(d.featureShape, [2]);
    assert.equal(d.featureDtype, 'float32');
    assert.deepEqual(d.classes, ['cat', 'dog']);
    assert.deepEqual(d.classCounts, [1, 2]);
    assert.deepEqual(d.preprocessing, { scale: 1, offset: 0 });
    assert.equal(d.source.upload, 'csv');
    assert.equal(d.source.files[0].filename, 'data.csv');
    const ex = await h.request('GET', `/v1/datasets/${d.id}/examples?offset=0&limit=5`);
    assert.equal(ex.status, 200);
    assert.equal(ex.body.total, 3);
    assert.deepEqual(
      ex.body.data.map((e: any) => [e.features, e.label, e.class]),
      [
        [[1.5, -2], 1, 'dog'],
        [[0.25, 300], 0, 'cat'],
        [[-7, 8], 1, 'dog'],
      ],
    );
    assert.equal(ex.body.data[0].image, undefined, 'a 2-value row is not an image');
  });

  test('integer labels are class indices; byte-valued features are stored as uint8; imageShape makes pictures', async () => {
    const rows = ['label,' + Array.from({ length: 4 }, (_, i) => `p${i}`).join(',')];
    rows.push('1,0,255,10,20', '0,1,2,3,4', '2,9,9,9,9');
    const d = await csv(rows.join('\n'), { imageShape: '[2, 2]', scale: '0.00392156862745098' });
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.deepEqual(d.classes, ['0', '1', '2']);
    assert.deepEqual(d.classCounts, [1, 1, 1]);
    assert.equal(d.featureDtype, 'uint8');
    assert.deepEqual(d.imageShape, [2, 2, 1]);
    assert.deepEqual(d.preprocessing, { scale: 0.00392156862745098, offset: 0 });
    const ex = await h.request('GET', `/v1/datasets/${d.id}/examples?limit=1`);
    assert.deepEqual(ex.body.data[0].features, [0, 255, 10, 20]);
    assert.match(ex.body.data[0].image, /^data:image\/png;base64,/);
  });

  test('a custom labelColumn and declared classes fix the class order', async () => {
    const d = await csv('y,a\nlow,1\nhigh,2\n', { labelColumn: 'y', classes: '["low", "high"]' });
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.deepEqual(d.classes, ['low', 'high']);
    assert.deepEqual(d.classCounts, [1, 1]);
  });

  test('a row with a missing value is ragged at its line and column', async () => {
    const d = await csv('a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,y\n');
    assertFailed(d, 'ragged', { line: 5, row: 4, column: 3, columnName: 'label', field: 'file' });
    assert.match(d.error.message, /line 5/);
    assertNoLeftovers(d.id);
  });

  test('a non-numeric cell is named by line, column and header', async () => {
    const d = await csv('a,b,label\n1,2,x\n3,four,y\n');
    assertFailed(d, 'not_numeric', { line: 3, row: 2, column: 2, columnName: 'b' });
    assert.match(d.error.message, /"four"/);
  });

  test('NaN and Infinity are refused where they are', async () => {
    assertFailed(await csv('a,b,label\n1,NaN,x\n3,4,y\n'), 'not_finite', { line: 2, column: 2 });
    assertFailed(await csv('a,b,label\n1,2,x\n-Infinity,4,y\n'), 'not_finite', { line: 3, column: 1 });
    assertFailed(await csv('a,b,label\n1,2,x\n3,1e39,y\n'), 'not_finite', { line: 3, column: 2 });
  });

  test('an empty cell, a header without data, a missing label column, an unclosed quote', async () => {
    assertFailed(await csv('a,b,label\n1,,x\n'), 'missing_value', { line: 2, column: 2 });
    assertFailed(await csv('a,b,label\n'), 'empty', { line: 2 });
    assertFailed(await csv(''), 'empty', { line: 1 });
    const noLabel = await csv('a,b,target\n1,2,x\n');
    assertFailed(noLabel, 'label_column_missing', { line: 1 });
    assert.match(noLabel.error.message, /"label"/);
    assertFailed(await csv('a,b,label\n1,"2,x\n'), 'unterminated_quote', { line: 2, column: 2 });
  });

  test('a gap in integer labels, or a declared class nobody has, is a class without examples', async () => {
    const gap = await csv('label,a\n0,1\n2,1\n');
    assertFailed(gap, 'class_without_examples', { class: '1' });
    assertFailed(await csv('label,a\ncat,1\ndog,1\n', { classes: '["cat", "dog", "emu"]' }), 'class_without_examples', { class: 'emu' });
    assertFailed(await csv('label,a\ncat,1\nyak,1\n', { classes: '["cat", "dog"]' }), 'unknown_class', { line: 3, column: 1 });
  });
});

describe('jsonl', () => {
  test('nested x and string labels: featureShape as given, an image, examples with pictures', async () => {
    const lines = [
      {
        x: [
          [0, 1],
          [2, 3],
        ],
        y: 'b',
      },
      {
        x: [
          [4, 5],
          [6, 7],
        ],
        y: 'a',
      },
      {
        x: [
          [0.5, 1],
          [2, 3],
        ],
        y: 'b',
      },
    ];
    const d = await jsonl(lines.map((l) => JSON.stringify(l)).join('\n') + '\n\n');
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.deepEqual(d.featureShape, [2, 2]);
    assert.deepEqual(d.imageShape, [2, 2, 1]);
    assert.equal(d.featureDtype, 'float32');
    assert.deepEqual(d.classes, ['a', 'b']);
    assert.deepEqual(d.classCounts, [1, 2]);
    const ex = await h.request('GET', `/v1/datasets/${d.id}/examples?offset=1&limit=10`);
    assert.deepEqual(
      ex.body.data.map((e: any) => e.index),
      [1, 2],
    );
    assert.deepEqual(ex.body.data[0].features, [4, 5, 6, 7]);
    assert.equal(ex.body.data[0].class, 'a');
    assert.match(ex.body.data[0].image, /^data:image\/png;base64,/);
  });

  test('flat x and integer y', async () => {
    const d = await jsonl('{"x": [1, 2, 3], "y": 1}\n{"y": 0, "x": [4, 5, 6], "id": "extra keys are ignored"}\n');
    assert.equal(d.status, 'ready', JSON.stringify(d.error));
    assert.deepEqual(d.featureShape, [3]);
    assert.deepEqual(d.classes, ['0', '1']);
    assert.equal(d.featureDtype, 'uint8');
  });

  test('invalid JSON is located by line and column', async () => {
    const d = await jsonl('{"x": [1, 2], "y": 0}\n{"x": [1, 2,], "y": 1}\n');
    assertFailed(d, 'invalid_json', { line: 2, column: 13 });
    const nan = await jsonl('{"x": [1, 2], "y": 0}\n{"x": [NaN, 2], "y": 1}\n');
    assertFailed(nan, 'invalid_json', { line: 2, column: 8 });
    assert.match(nan.error.message, /NaN is not a number in JSON/);
  });

  test('ragged x, within a line or against the first line, names the pointer and column', async () => {
    const inner = await jsonl('{"x": [[1, 2], [3]], "y": 0}\n');
    assertFailed(inner, 'ragged', { line: 1, pointer: '/x/1', column: 16 });
    const across = await jsonl('{"x": [1, 2, 3], "y": 0}\n{"x": [1, 2], "y": 1}\n');
    assertFailed(across, 'ragged', { line: 2, pointer: '/x' });
    assert.match(across.error.message, /expected 3/);
  });

  test('a non-number in x, a bad or missing y, an empty file', async () => {
    assertFailed(await jsonl('{"x": [[1, 2], [3, "4"]], "y": 0}\n'), 'not_numeric', { line: 1, pointer: '/x/1/1', column: 20 });
    assertFailed(await jsonl('{"x": [1], "y": 0}\n{"x": [2], "y": 1.5}\n'), 'invalid_label', { line: 2, pointer: '/y', column: 17 });
    assertFailed(await jsonl('{"x": [1], "y": 0}\n{"x": [2]}\n'), 'invalid_example', { line: 2, pointer: '/y' });
    assertFailed(await jsonl('\n\n'), 'empty', { line: 1 });
    assertFailed(await jsonl('{"x": [1], "y": 0}\n[1, 2]\n'), 'invalid_example', { line: 2, pointer: '' });
  });
});

describe('the upload request', () => {
  test('missing, unknown, misplaced and repeated fields are 400s naming them, and nothing is created', async () => {
    const before = (await h.request('GET', '/v1/datasets?limit=200')).body.data.length;
    const file = [{ field: 'file', content: 'a,label\n1,x\n' }];
    const pointers = async (fields: Record<string, string>, files = file) => {
      const res = no5xx(await postForm(h, '/v1/datasets', fields, files));
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      return res.body.errors.map((e: any) => e.pointer);
    };
    assert.deepEqual(await pointers({ format: 'csv' }), ['/name']);
    assert.deepEqual(await pointers({ name: 'x', format: 'parquet' }), ['/format']);
    assert.deepEqual(await pointers({ name: 'x', format: 'csv', colour: 'red' }), ['/colour']);
    assert.deepEqual(await pointers({ name: 'x', format: 'csv', channels: '3' }), ['/channels']);
    assert.deepEqual(await pointers({ name: 'x', format: 'csv' }, []), ['/file']);
    assert.deepEqual(await pointers({ name: 'x', format: 'csv', classes: 'cat,dog' }), ['/classes']);
    assert.deepEqual(await pointers({ name: 'x', format: 'idx' }), ['/file', '/images', '/labels']);
    assert.equal((await h.request('GET', '/v1/datasets?limit=200')).body.data.length, before);
    assert.deepEqual(readdirSync(join(h.dataDir, 'artifacts', 'uploads')), []);
  });

  test('beyond UPLOAD_LIMIT_BYTES the answer is 413, whether the size is declared or found while streaming', async () => {
    const big = 'a,label\n' + '1,x\n'.repeat(UPLOAD_LIMIT / 2);
    const streamed = await postForm(h, '/v1/datasets', { name: 'big', format: 'csv' }, [{ field: 'file', content: big }]);
    assert.equal(streamed.status, 413, JSON.stringify(streamed.body));
    assert.equal(streamed.body.status, 413);
    assert.match(streamed.body.detail, /UPLOAD_LIMIT_BYTES/);
    const huge = 'a,label\n' + '1,x\n'.repeat(600_000);
    const declared = await postForm(h, '/v1/datasets', { name: 'huge', format: 'csv' }, [{ field: 'file', content: huge }]);
    assert.equal(declared.status, 413);
    assert.ok(!(await h.request('GET', '/v1/datasets?limit=200')).body.data.some((d: any) => d.name === 'big' || d.name === 'huge'));
    assert.deepEqual(readdirSync(join(h.dataDir, 'artifacts', 'uploads')), []);
    // the service is fine afterwards
    assert.equal((await csv('a,label\n1,x\n2,y\n')).status, 'ready');
  });

  test('a dataset can be deleted while it validates, and its files go with it', async () => {
    const rows = 'a,label\n' + '1,x\n2,y\n'.repeat(100);
    const res = await postForm(h, '/v1/datasets', { name: 'gone', format: 'csv' }, [{ field: 'file', content: rows }]);
    assert.equal(res.status, 202);
    assert.equal((await h.request('DELETE', `/v1/datasets/${res.body.id}`)).status, 204);
    assert.equal((await h.request('GET', `/v1/datasets/${res.body.id}`)).status, 404);
    // the conversion finishes on its own time, then finds no dataset and removes what it wrote
    await waitFor('the orphaned conversion to be cleaned up', async () => {
      try {
        assertNoLeftovers(res.body.id);
        return true;
      } catch {
        return false;
      }
    });
  });

  test('examples of a dataset that is not ready are a 409, of an unknown one a 404', async () => {
    const d = await csv('a,label\n1,x\n2,');
    assert.equal(d.status, 'failed');
    assert.equal((await h.request('GET', `/v1/datasets/${d.id}/examples`)).status, 409);
    assert.equal((await h.request('GET', '/v1/datasets/ds_none/examples')).status, 404);
    const ok = await csv('a,label\n1,x\n2,y\n');
    const past = await h.request('GET', `/v1/datasets/${ok.id}/examples?offset=5`);
    assert.deepEqual(past.body, { data: [], offset: 5, total: 2, nextOffset: null });
    assert.equal((await h.request('GET', `/v1/datasets/${ok.id}/examples?limit=1000`)).status, 400);
  });
});

test('settled() sees every upload of this file finish', async () => {
  const list = (await h.request('GET', '/v1/datasets?limit=200')).body.data;
  for (const d of list) assert.notEqual((await settled(h, d.id)).status, 'validating');
});
