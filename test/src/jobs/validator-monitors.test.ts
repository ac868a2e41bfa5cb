/** The spec rules of the label-free validators: what a monitor needs, where validatorSample applies. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { specProblems } from '../../../src/jobs/spec-rules.js';
import type { Hyperparameters, JobSpec } from '../../../src/schemas/job.js';

const hp = (over: Partial<Hyperparameters> = {}): Hyperparameters => ({ epochs: 1, batchSize: 8, optimizer: { name: 'adam', learningRate: 0.001 }, ...over });
const train = (over: Partial<Hyperparameters>): JobSpec => ({
  type: 'train',
  model: { architecture: { kind: 'mlp', hidden: [8] } },
  data: { train: 't' },
  hyperparameters: hp(over),
});
const adapt = (over: Partial<Hyperparameters>, data: JobSpec['data'] = { source: 's', target: 't' }): JobSpec => ({
  type: 'domain_adaptation',
  model: { base: 'b' },
  method: { kind: 'dann' },
  data,
  hyperparameters: hp(over),
});
const at = (spec: JobSpec) => specProblems(spec).map((p) => `${p.pointer}: ${p.detail}`);

test('a label-free monitor needs a domain-adaptation job with a target; dev and the source ones a validation set', () => {
  assert.deepEqual(at(train({ earlyStopping: { patience: 2, monitor: 'snd' } })), [
    "/hyperparameters/earlyStopping/monitor: watches snd, which is computed on the target's unlabelled data: it needs a domain_adaptation job with data.target",
  ]);
  assert.deepEqual(at(adapt({ earlyStopping: { patience: 2, monitor: 'dev' } })), [
    '/hyperparameters/earlyStopping/monitor: watches dev, which needs data.validation to watch',
  ]);
  // the default monitor, valLoss, keeps the pointer and words it always had
  assert.deepEqual(at(adapt({ earlyStopping: { patience: 2 } })), ['/hyperparameters/earlyStopping: watches valLoss, which needs data.validation to watch']);
  for (const monitor of ['entropy', 'im', 'snd'] as const) assert.deepEqual(at(adapt({ earlyStopping: { patience: 2, monitor } })), []);
  assert.deepEqual(at(adapt({ earlyStopping: { patience: 2, monitor: 'dev' } }, { source: 's', target: 't', validation: 'v' })), []);
  // errorBound reads both: dev's domain classifier on the target, and the source validation error
  assert.deepEqual(at(adapt({ earlyStopping: { patience: 2, monitor: 'errorBound' } })), [
    '/hyperparameters/earlyStopping/monitor: watches errorBound, which needs data.validation to watch',
  ]);
  assert.deepEqual(at(adapt({ earlyStopping: { patience: 2, monitor: 'errorBound' } }, { source: 's', target: 't', validation: 'v' })), []);
});

test('validatorSample applies only where the validators run', () => {
  assert.deepEqual(at(adapt({ validatorSample: 200 })), []);
  assert.deepEqual(at(train({ validatorSample: 200 })), [
    '/hyperparameters/validatorSample: applies to domain_adaptation jobs with data.target only (the label-free validators read the target)',
  ]);
});
