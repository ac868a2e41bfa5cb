import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { CompiledCode } from '../../../src/plugins/compiled-code.js';
import { serializerCompiler } from '../../../src/plugins/serializer.js';
import { JobSpec } from '../../../src/schemas/job.js';

const reply = Type.Object({ id: Type.String(), spec: JobSpec, note: Type.Union([Type.String(), Type.Null()]) });
const serialize = serializerCompiler(new CompiledCode(null))({ schema: reply, method: 'GET', url: '/', httpStatus: '200' });

test('a JobSpec is written as stored, every field of it, whatever its method', () => {
  const spec = {
    type: 'train',
    model: { architecture: { kind: 'cnn', filters: [8], hidden: [16] } },
    data: { train: 'ds_a', target: 'ds_b' },
    method: { kind: 'dann', weight: 0.3 },
    hyperparameters: { epochs: 2, batchSize: 32, seed: 1, optimizer: { name: 'adam', learningRate: 0.001 } },
    webhook: { url: 'https://example.com/hook' },
  };
  assert.deepEqual(JSON.parse(serialize({ id: 'job_1', spec, note: null })), { id: 'job_1', spec, note: null });
});

test('outside the spec the schema still decides: unknown fields are dropped, unions are kept', () => {
  const out = JSON.parse(serialize({ id: 'job_1', spec: { type: 'train' }, note: 'n', secret: 'x' }));
  assert.deepEqual(out, { id: 'job_1', spec: { type: 'train' }, note: 'n' });
});
