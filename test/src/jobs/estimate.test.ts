import assert from 'node:assert/strict';
import { test } from 'node:test';
import { estimateJob, type DatasetShape } from '../../../src/jobs/estimate.js';
import { SND_BLOCK_ROWS, SND_VALUES_PER_BLOCK_CELL } from '../../../src/jobs/validators.js';
import type { JobSpec } from '../../../src/schemas/job.js';
import { nsfwMobileNetV2 } from '../../helpers/nsfwjs-model.js';

/** What the estimate must get right whatever its calibration: which parts grow with what. */
const mnist: DatasetShape = { numExamples: 1000, featureShape: [784], featureDtype: 'uint8', numClasses: 10 };
const spec = (over: Partial<JobSpec> = {}, hp: Partial<NonNullable<JobSpec['hyperparameters']>> = {}): JobSpec => ({
  type: 'train',
  model: { architecture: { kind: 'mlp', hidden: [64] } },
  data: { train: 'ds' },
  hyperparameters: { epochs: 2, batchSize: 50, optimizer: { name: 'sgd', learningRate: 0.01 }, ...hp },
  ...over,
});
const estimate = (s: JobSpec, data: Record<string, DatasetShape> = { train: mnist }) => estimateJob({ spec: s, data });

test('weights and optimizer state follow the layers and the optimizer', () => {
  const sgd = estimate(spec());
  assert.equal(sgd.parameters, 784 * 64 + 64 + 64 * 10 + 10);
  assert.equal(sgd.parameterBytes, 4 * sgd.parameters);
  assert.equal(sgd.optimizerStateBytes, 0);
  assert.equal(estimate(spec({}, { optimizer: { name: 'momentum', learningRate: 0.01 } })).optimizerStateBytes, 4 * sgd.parameters);
  assert.equal(estimate(spec({}, { optimizer: { name: 'adam', learningRate: 0.01 } })).optimizerStateBytes, 8 * sgd.parameters);
  const frozen = estimate({ ...spec({}, { optimizer: { name: 'adam', learningRate: 0.01 } }), type: 'finetune', strategy: { kind: 'freeze' } });
  assert.equal(frozen.optimizerStateBytes, 8 * (64 * 10 + 10), 'a frozen layer has no optimizer state');
});

test('datasets count in their stored element type, and FLOPs grow with epochs', () => {
  const uint8 = estimate(spec());
  const float = estimate(spec(), { train: { ...mnist, featureDtype: 'float32' } });
  assert.equal(float.datasetBytes - uint8.datasetBytes, 3 * 1000 * 784);
  const ten = estimate(spec({}, { epochs: 10 }));
  assert.equal(ten.flopsPerEpoch, uint8.flopsPerEpoch);
  assert.equal(ten.flops - uint8.flops, 8 * uint8.flopsPerEpoch);
  assert.equal(uint8.stepsPerEpoch, 20);
});

test("the methods' extra passes: target rows, the domain classifier, MMD's square of the batch", () => {
  // the smallest validator sample: SND's square of it would outweigh MMD's matrices (the next test)
  const da = (method: JobSpec['method'], batchSize = 50) =>
    estimate(
      { ...spec({}, { batchSize, validatorSample: 16 }), type: 'domain_adaptation', method, data: { source: 'ds', target: 'dt' } },
      { train: mnist, target: mnist },
    );
  const plain = estimate(spec({}, { batchSize: 400 }));
  const coral = da({ kind: 'coral' }, 400);
  assert.ok(coral.activationBytes > 1.5 * plain.activationBytes, 'target batches go through the model too');
  assert.ok(coral.flopsPerEpoch > 1.9 * plain.flopsPerEpoch);
  const dann = da({ kind: 'dann', hiddenUnits: 100 });
  assert.equal(dann.parameterBytes - plain.parameterBytes, 4 * (64 * 100 + 2 * 100 + 1), 'the domain classifier on the 64 features');
  const [small, large] = [da({ kind: 'mmd' }, 100), da({ kind: 'mmd' }, 400)];
  assert.ok(large.activationBytes > 10 * small.activationBytes, 'kernel matrices of (2 batch)^2');
});

test("the label-free validators at each epoch's end: SND's blocks of the target sample, and dev's and errorBound's domain classifiers with data.validation", () => {
  const large: DatasetShape = { ...mnist, numExamples: 5000 };
  const da = (validatorSample: number, validation: boolean) =>
    estimate(
      {
        ...spec({}, { validatorSample }),
        type: 'domain_adaptation',
        method: { kind: 'coral' },
        data: { source: 'ds', target: 'dt', ...(validation ? { validation: 'dv' } : {}) },
      },
      { train: large, target: large, ...(validation ? { validation: large } : {}) },
    );
  // SND's block of 256 rows by the sample (its similarities, mask, softmax and entropy's arrays), measured in its tidy
  assert.ok(da(4000, false).activationBytes >= SND_VALUES_PER_BLOCK_CELL * SND_BLOCK_ROWS * 4000 * 4, `${da(4000, false).activationBytes}`);
  assert.ok(da(4000, false).activationBytes < 100 * 2 ** 20, 'not the square of the sample');
  // 3 penalties x 100 full-batch steps on 4/5 of 2000 rows: dev's 64-32-1 classifier once, the linear probe on each of 5 folds
  const classifiers = 3 * 100 * 6 * 1600 * (64 * 32 + 32 + 5 * 64);
  const validationPass = 2 * (784 * 64 + 64 * 10) * 5000;
  assert.ok(da(1000, true).flopsPerEpoch - da(1000, false).flopsPerEpoch >= classifiers + validationPass);
});

test('a batch never has more rows than its dataset', () => {
  assert.deepEqual(estimate(spec({}, { batchSize: 1000 })).activationBytes, estimate(spec({}, { batchSize: 8192 })).activationBytes);
});

test('a frozen MobileNetV2 costs its forward only, and nothing per step on cached features; a new head on a named layer replaces what follows it', () => {
  const base = nsfwMobileNetV2(1).modelJson;
  const photos: DatasetShape = { numExamples: 600, featureShape: [224, 224, 3], featureDtype: 'uint8', numClasses: 3 };
  const finetune = (strategy: JobSpec['strategy'], hp: Partial<NonNullable<JobSpec['hyperparameters']>> = {}) =>
    estimateJob({
      spec: { ...spec({}, { batchSize: 32, optimizer: { name: 'adam', learningRate: 0.001 }, ...hp }), type: 'finetune', model: { base: 'b' }, strategy },
      data: { train: photos },
      base,
    });
  const head = { kind: 'freeze', newHead: true, featureLayer: 'flatten_1' } as const;
  const cached = finetune(head);
  const uncached = finetune(head, { augment: { flip: 'horizontal' } });
  const full = finetune({ kind: 'full', newHead: true, featureLayer: 'flatten_1' });
  // the head alone trains: 1280 features to 3 classes, with Adam's two slots
  assert.equal(cached.optimizerStateBytes, 8 * (1280 * 3 + 3));
  assert.ok(cached.memoryBytes < 2 * 2 ** 30, `a new head on cached features fits the default 2 GiB: ${cached.memoryBytes}`);
  assert.ok(cached.activationBytes < uncached.activationBytes, 'augmentation rules the cache out: the frozen base runs at every step');
  assert.ok(uncached.activationBytes < full.activationBytes / 2, 'a frozen base keeps its forward, not its backward');
  // FLOPs: the cached job runs the base once, the uncached one at every epoch
  assert.ok(finetune(head, { epochs: 10 }).flops - cached.flops < uncached.flopsPerEpoch / 10);
  const block = finetune({ ...head, trainFrom: 'block_16_expand' });
  assert.ok(block.optimizerStateBytes > cached.optimizerStateBytes && block.optimizerStateBytes < full.optimizerStateBytes);
  assert.ok(block.memoryBytes < 2 * 2 ** 30, `the last block on cached features fits too: ${block.memoryBytes}`);
});
