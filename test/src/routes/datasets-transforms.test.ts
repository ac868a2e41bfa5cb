import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startHarness, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';
import { settled, uploadDataset } from '../artifacts/fixtures.js';

let h: Harness;
let mnist: any;
const N = 600;

before(async () => {
  h = await startHarness();
  const res = await h.request('POST', '/v1/datasets', { name: 'mnist', source: { builtin: 'mnist', split: 'train', limit: N } });
  assert.equal(res.status, 201);
  mnist = res.body;
});
after(() => h?.stop());

async function derive(transform: Record<string, unknown>, from = mnist.id): Promise<any> {
  const res = await h.request('POST', '/v1/datasets', { name: 'derived', source: { from, transform } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.equal(res.body.status, 'validating');
  const d = await settled(h, res.body.id);
  assert.equal(d.status, 'ready', JSON.stringify(d.error));
  return d;
}

/**
 * `count` examples of a dataset from `offset` (every one by default): features and label. A check
 * asks only for what it reads: each page comes with a PNG preview per image.
 */
async function examples(id: string, { offset = 0, count = Infinity } = {}): Promise<Array<{ features: number[]; label: number }>> {
  const out: Array<{ features: number[]; label: number }> = [];
  for (let at = offset; at < offset + count; at += 100) {
    const limit = Math.min(100, offset + count - at);
    const { body } = await h.request('GET', `/v1/datasets/${id}/examples?offset=${at}&limit=${limit}`);
    out.push(...body.data.map((e: any) => ({ features: e.features, label: e.label })));
    if (at + limit >= body.total) break;
  }
  return out;
}

const key = (e: { features: number[]; label: number }) => `${e.label}:${e.features.join(',')}`;
let source: Array<{ features: number[]; label: number }>;

describe('image operations', () => {
  before(async () => {
    source = await examples(mnist.id);
  });

  test('rotate by 90 degrees equals the hand-rotated image (counter-clockwise)', async () => {
    const d = await derive({ rotate: 90 });
    assert.deepEqual(d.featureShape, [784]);
    assert.deepEqual(d.imageShape, [28, 28, 1]);
    assert.deepEqual(d.classCounts, mnist.classCounts);
    assert.deepEqual(d.source, { from: mnist.id, transform: { rotate: 90, seed: 0 } });
    for (const i of [0, 1, 17, N - 1]) {
      const [rotated] = await examples(d.id, { offset: i, count: 1 });
      const by = (r: number, c: number) => source[i].features[c * 28 + (27 - r)];
      const expected = Array.from({ length: 784 }, (_, k) => by(Math.floor(k / 28), k % 28));
      assert.deepEqual(rotated.features, expected, `example ${i}`);
      assert.equal(rotated.label, source[i].label);
    }
  });

  test('rotate by 30 degrees (the domain-adaptation target) changes pixels but keeps the ink', async () => {
    const d = await derive({ rotate: 30 });
    const rotated = await examples(d.id, { count: 10 });
    const ink = (f: number[]) => f.reduce((a, b) => a + b, 0);
    for (const i of [0, 5, 9]) {
      assert.notDeepEqual(rotated[i].features, source[i].features);
      const ratio = ink(rotated[i].features) / ink(source[i].features);
      assert.ok(ratio > 0.85 && ratio < 1.15, `ink ratio ${ratio}`);
    }
  });

  test('translate moves pixels exactly, filling with zeros; invert is 255 - v', async () => {
    const moved = await examples((await derive({ translate: { x: 3, y: -2 } })).id, { count: 5 });
    const i = 4;
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        const from = r + 2 < 28 && c - 3 >= 0 ? source[i].features[(r + 2) * 28 + (c - 3)] : 0;
        assert.equal(moved[i].features[r * 28 + c], from, `pixel ${r},${c}`);
      }
    }
    const inverted = await examples((await derive({ invert: true })).id, { count: 5 });
    assert.deepEqual(
      inverted[i].features,
      source[i].features.map((v) => 255 - v),
    );
  });

  test('noise is deterministic under the seed, and a different seed differs', async () => {
    const a = await examples((await derive({ noise: { sigma: 0.2 }, seed: 5 })).id, { count: 50 });
    const b = await examples((await derive({ noise: { sigma: 0.2 }, seed: 5 })).id, { count: 50 });
    const c = await examples((await derive({ noise: { sigma: 0.2 }, seed: 6 })).id, { count: 1 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a[0].features, c[0].features);
    // sigma 0.2 in model-input units is 0.2 / (2/255) = 25.5 grey levels
    const diffs = a[0].features.map((v, k) => v - source[0].features[k]).filter((_, k) => source[0].features[k] > 40 && source[0].features[k] < 215);
    const sd = Math.sqrt(diffs.reduce((s, d) => s + d * d, 0) / diffs.length);
    assert.ok(sd > 15 && sd < 36, `noise sd ${sd} on mid-grey pixels`);
  });

  test('scale zooms about the centre: the centre pixel stays, the ink grows', async () => {
    const zoomed = await examples((await derive({ scale: 1.5 })).id, { count: 20 });
    const ink = (f: number[]) => f.filter((v) => v > 128).length;
    let grew = 0;
    for (let i = 0; i < 20; i++) if (ink(zoomed[i].features) > ink(source[i].features)) grew++;
    assert.ok(grew >= 18, `ink grew in ${grew} of 20`);
  });
});

describe('selections', () => {
  test('a seeded subset is deterministic: perClass and fraction', async () => {
    const a = await derive({ subset: { perClass: 5 }, seed: 3 });
    const b = await derive({ subset: { perClass: 5 }, seed: 3 });
    const c = await derive({ subset: { perClass: 5 }, seed: 4 });
    assert.equal(a.numExamples, 50);
    assert.deepEqual(a.classCounts, new Array(10).fill(5));
    const [ea, eb, ec] = await Promise.all([examples(a.id), examples(b.id), examples(c.id)]);
    assert.deepEqual(ea, eb);
    assert.notDeepEqual(ea.map(key), ec.map(key));
    const all = new Set(source.map(key));
    assert.ok(
      ea.every((e) => all.has(key(e))),
      'a subset holds source examples only',
    );
    const f = await derive({ subset: { fraction: 0.1 }, seed: 3 });
    assert.deepEqual(
      f.classCounts,
      mnist.classCounts.map((n: number) => Math.max(1, Math.round(n * 0.1))),
    );
  });

  test('the two parts of a split are disjoint and together are the source, stratified by class', async () => {
    const train = await derive({ split: { part: 'train', fraction: 0.25 }, seed: 9 });
    const validation = await derive({ split: { part: 'validation', fraction: 0.25 }, seed: 9 });
    assert.equal(train.numExamples + validation.numExamples, N);
    assert.deepEqual(
      validation.classCounts,
      mnist.classCounts.map((n: number) => Math.round(n * 0.25)),
    );
    const parts = [...(await examples(train.id)), ...(await examples(validation.id))].map(key).sort();
    assert.deepEqual(parts, source.map(key).sort());
    const again = await derive({ split: { part: 'validation', fraction: 0.25 }, seed: 9 });
    assert.deepEqual(await examples(again.id), await examples(validation.id));
  });

  test('classes: remapped to the listed order, or kept as they are', async () => {
    const remapped = await derive({ classes: { keep: ['5', '3'] } });
    assert.deepEqual(remapped.classes, ['5', '3']);
    assert.deepEqual(remapped.classCounts, [mnist.classCounts[5], mnist.classCounts[3]]);
    const ex = await examples(remapped.id);
    assert.ok(ex.every((e) => e.label === 0 || e.label === 1));
    const kept = await derive({ classes: { keep: ['3', '5'], remap: false } });
    assert.deepEqual(kept.classes, mnist.classes);
    assert.deepEqual(
      kept.classCounts,
      mnist.classCounts.map((n: number, i: number) => (i === 3 || i === 5 ? n : 0)),
    );
    const nothing = await h.request('POST', '/v1/datasets', { name: 'none', source: { from: kept.id, transform: { classes: { keep: ['4'] } } } });
    const failed = await settled(h, nothing.body.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error.code, 'empty');
  });

  test('all at once, in the documented order, and the result trains', async () => {
    const d = await derive({
      split: { part: 'train', fraction: 0.2 },
      classes: { keep: ['0', '1', '2'] },
      subset: { perClass: 30 },
      rotate: 30,
      noise: { sigma: 0.05 },
      seed: 1,
    });
    assert.deepEqual(d.classes, ['0', '1', '2']);
    assert.deepEqual(d.classCounts, [30, 30, 30]);
    const job = await waitForJob(
      h,
      (
        await h.request(
          'POST',
          '/v1/jobs',
          trainSpec({ train: d.id, test: d.id }, { hyperparameters: { epochs: 3, batchSize: 16, seed: 1, optimizer: { name: 'adam', learningRate: 0.003 } } }),
        )
      ).body.id,
    );
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.ok(job.result.metrics.testAccuracy > 0.5, `accuracy ${job.result.metrics.testAccuracy}`);
  });
});

describe('refused transforms', () => {
  const refused = async (source: unknown, pointer: string) => {
    const res = await h.request('POST', '/v1/datasets', { name: 'x', source });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    const pointers = res.body.errors.map((e: any) => e.pointer);
    assert.ok(pointers.includes(pointer), `expected ${pointer} in ${JSON.stringify(res.body.errors)}`);
    assert.ok(!pointers.includes('/source/builtin'), 'a derived body is not judged as a built-in one');
    return res.body;
  };

  test('unknown or unready sources, unknown classes, bad parameters', async () => {
    await refused({ from: 'ds_nope', transform: { invert: true } }, '/source/from');
    await refused({ from: mnist.id, transform: { classes: { keep: ['3', 'three'] } } }, '/source/transform/classes/keep/1');
    await refused({ from: mnist.id, transform: {} }, '/source/transform');
    await refused({ from: mnist.id, transform: { subset: { perClass: 3, fraction: 0.5 } } }, '/source/transform/subset');
    await refused({ from: mnist.id, transform: { split: { part: 'train', fraction: 1 } } }, '/source/transform/split/fraction');
    await refused({ from: mnist.id, transform: { rotate: '30' } }, '/source/transform/rotate');
    await refused({ from: mnist.id, transform: { blur: 2 } }, '/source/transform/blur');
    const failed = await uploadDataset(h, { name: 'bad', format: 'csv' }, [{ field: 'file', content: 'a,label\n1,\n' }]);
    await refused({ from: failed.id, transform: { invert: true } }, '/source/from');
  });

  test('image operations on data that is not image-like', async () => {
    const flat = await uploadDataset(h, { name: 'flat', format: 'csv' }, [{ field: 'file', content: 'a,b,c,label\n1,2,3,x\n4,5,6,y\n' }]);
    const body = await refused({ from: flat.id, transform: { rotate: 10 } }, '/source/transform/rotate');
    assert.match(body.detail, /image-like/);
    // invert and noise need no image; small integers are stored as uint8, so invert is 255 - v
    assert.equal(flat.featureDtype, 'uint8');
    const inverted = await derive({ invert: true }, flat.id);
    assert.deepEqual(
      (await examples(inverted.id)).map((e) => e.features),
      [
        [254, 253, 252],
        [251, 250, 249],
      ],
    );
    // float data inverts within its own range: (min + max) - v
    const floats = await uploadDataset(h, { name: 'floats', format: 'csv' }, [{ field: 'file', content: 'a,b,label\n0.5,1,x\n2,-1,y\n' }]);
    const flipped = await derive({ invert: true }, floats.id);
    assert.deepEqual(
      (await examples(flipped.id)).map((e) => e.features),
      [
        [0.5, 0],
        [-1, 2],
      ],
    );
  });
});
