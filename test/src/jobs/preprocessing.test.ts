import assert from 'node:assert/strict';
import { test } from 'node:test';
import { augmentsInput } from '../../../src/jobs/augmentation.js';
import { feedShape } from '../../../src/jobs/input-shape.js';
import { channelAffine, channelProblem, samePreprocessing } from '../../../src/jobs/preprocessing.js';
import { preprocessingProblem } from '../../../src/schemas/preprocessing.js';
import { specProblems } from '../../../src/jobs/spec-rules.js';
import type { JobSpec } from '../../../src/schemas/job.js';

const apply = (p: Parameters<typeof channelAffine>[0], channels: number, pixel: number) => {
  const { scale, offset } = channelAffine(p, channels);
  return Array.from(scale, (s, c) => pixel * s + offset[c]);
};
const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-6);

test('each input convention maps pixels as its networks expect', () => {
  assert.ok(close(apply({ range: [0, 1] }, 3, 0), [0, 0, 0]) && close(apply({ range: [0, 1] }, 3, 255), [1, 1, 1]));
  assert.ok(close(apply({ range: [-1, 1] }, 1, 0), [-1]) && close(apply({ range: [-1, 1] }, 1, 255), [1]) && close(apply({ range: [-1, 1] }, 1, 127.5), [0]));
  const imagenet = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
  assert.ok(close(apply(imagenet, 3, 255), [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]));
  assert.ok(close(apply({ mean: [0.5], std: [0.5] }, 3, 0), [-1, -1, -1]), 'one mean and std serve every channel');
  assert.ok(close(apply({ scale: 2 / 255, offset: -1 }, 1, 255), [1]));
  assert.ok(samePreprocessing({ range: [-1, 1] }, { scale: 2 / 255, offset: -1 }));
  assert.ok(!samePreprocessing({ range: [0, 1] }, { scale: 2 / 255, offset: -1 }));
});

test('a declared convention is checked beyond its schema', () => {
  assert.equal(preprocessingProblem({ range: [0, 1] }), undefined);
  assert.equal(preprocessingProblem({ mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] }), undefined);
  assert.equal(preprocessingProblem({ range: [0, 255] }), undefined, 'any [low, high]');
  assert.match(preprocessingProblem({ range: [1, -1] })!, /expected \[low, high\] with low below high/);
  assert.match(preprocessingProblem({ range: [0] })!, /expected \{scale, offset\}, \{range: \[low, high\]\}/);
  assert.match(preprocessingProblem({ scale: 0, offset: 1 })!, /scale 0/);
  assert.match(preprocessingProblem({ mean: [0.5, 0.5], std: [0.2] })!, /2 means and 1 standard deviations/);
  assert.match(preprocessingProblem({ mean: [0.5], std: [0] })!, /every std above 0/);
  assert.match(preprocessingProblem({ scale: 1, offset: 0, extra: 1 })!, /expected/);
  assert.match(channelProblem({ mean: [0.5, 0.5, 0.5], std: [1, 1, 1] }, 1)!, /3 per-channel means, but the examples have 1 channel/);
});

test("a dataset whose images are the base model's is fed in its shape, whatever its layout", () => {
  const photos = { id: 'ds_photos', featureShape: [150528], imageShape: [224, 224, 3] };
  assert.deepEqual(feedShape(photos, [224, 224, 3]), { shape: [224, 224, 3] });
  assert.deepEqual(feedShape({ ...photos, featureShape: [224, 224, 3] }, [150528]), { shape: [150528] });
  assert.deepEqual(feedShape(photos, null), { shape: [150528] });
  // MNIST rows registered flat, without an imageShape, are 28x28 greyscale images
  assert.deepEqual(feedShape({ id: 'ds_mnist', featureShape: [784], imageShape: null }, [28, 28, 1]), { shape: [28, 28, 1] });
  assert.deepEqual(feedShape({ id: 'ds_mnist', featureShape: [784], imageShape: null }, [28, 28]), { shape: [28, 28] });
});

test('a real mismatch names both shapes and the way out', () => {
  const small = feedShape({ id: 'ds_small', featureShape: [12288], imageShape: [64, 64, 3] }, [224, 224, 3]);
  assert.ok('problem' in small);
  assert.match(small.problem, /takes inputs of shape \[224, 224, 3\]; dataset ds_small has examples of shape \[12288\] \(images \[64, 64, 3\]\)/);
  assert.match(small.problem, /imageSize \[224, 224\] \(with resize "cover" or "contain"/);
  const grey = feedShape({ id: 'ds_grey', featureShape: [224, 224, 1], imageShape: [224, 224, 1] }, [224, 224, 3]);
  assert.ok('problem' in grey && /channels 3 \(greyscale images become 3 equal channels\)/.test(grey.problem) && !/imageSize/.test(grey.problem));
  const table = feedShape({ id: 'ds_table', featureShape: [5], imageShape: null }, [224, 224, 3]);
  assert.ok('problem' in table && /expected 150528 values per example as \[224, 224, 3\] images/.test(table.problem));
});

test('augment: something to change, target batches only where the method has them, and what disables a feature cache', () => {
  const base: JobSpec = {
    type: 'domain_adaptation',
    model: { architecture: { kind: 'mlp', hidden: [8] } },
    method: { kind: 'coral' },
    data: { source: 'a', target: 'b' },
    hyperparameters: {
      epochs: 1,
      batchSize: 8,
      optimizer: { name: 'adam', learningRate: 0.001 },
      augment: { flip: 'horizontal', apply: ['source', 'target'] },
    },
  };
  assert.deepEqual(specProblems(base), []);
  assert.ok(augmentsInput(base));
  const with_ = (augment: object, method: JobSpec['method'] = base.method, type: JobSpec['type'] = base.type) =>
    specProblems({ ...base, type, method, hyperparameters: { ...base.hyperparameters!, augment } }).map((p) => `${p.pointer} ${p.detail}`);
  assert.deepEqual(with_({ apply: ['source'] }), [
    '/hyperparameters/augment changes nothing; expected at least one of flip, rotate, translate, scale, brightness, contrast or noise above 0',
  ]);
  assert.match(
    with_({ noise: 0.1, apply: ['target'] }, { kind: 'adabn' }).join(),
    /\/hyperparameters\/augment\/apply names target, but method adabn trains on no target batches/,
  );
  const finetune = {
    type: 'finetune' as const,
    model: { base: 'm' },
    data: { train: 'a' },
    hyperparameters: { epochs: 1, batchSize: 8, optimizer: { name: 'adam' as const, learningRate: 0.001 } },
  };
  assert.ok(!augmentsInput(finetune));
  assert.ok(!augmentsInput({ ...finetune, hyperparameters: { ...finetune.hyperparameters, augment: { rotate: 0 } } }), 'a zero bound changes nothing');
  assert.ok(augmentsInput({ ...finetune, hyperparameters: { ...finetune.hyperparameters, augment: { rotate: 5 } } }));
  assert.match(
    specProblems({ ...finetune, hyperparameters: { ...finetune.hyperparameters, augment: { rotate: 5, apply: ['source'] } } })
      .map((p) => `${p.pointer} ${p.detail}`)
      .join(),
    /\/hyperparameters\/augment\/apply applies to domain_adaptation jobs only/,
  );
});
