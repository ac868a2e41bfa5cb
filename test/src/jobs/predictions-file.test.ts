import assert from 'node:assert/strict';
import { test } from 'node:test';
import { predictionLine, predictionsBytesBound } from '../../../src/jobs/predictions-file.js';

test('a CSV predictions line quotes as RFC 4180 asks and keeps formula-like class names inert', () => {
  const line = predictionLine('csv', 3, [
    { class: '=HYPERLINK("http://x")', probability: 0.5 },
    { class: 'a,b', probability: 0.25 },
    { class: '-1', probability: 0.125 },
    { class: '@SUM(A1)', probability: 0.0625 },
    { class: 'plain', probability: 0.0625 },
  ]);
  assert.equal(line, `3,"'=HYPERLINK(""http://x"")",0.5,"a,b",0.25,'-1,0.125,'@SUM(A1),0.0625,plain,0.0625\n`);
});

test('the bytes bound covers the apostrophe and quotes a formula-like class name gains', () => {
  const classes = ['=1+1', '+cmd|x'];
  const ranked = classes.map((c) => ({ class: c, probability: 0.0000012345678901234567 }));
  const bound = predictionsBytesBound({ format: 'csv', rows: 1, topK: 2, classes });
  const written = 'index,class_1,probability_1,class_2,probability_2\n'.length + predictionLine('csv', 0, ranked).length;
  assert.ok(written <= bound, `${written} bytes written, bound ${bound}`);
});
