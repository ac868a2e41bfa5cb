import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TrainingTask } from '../../../src/jobs/task.js';
import { childFailure } from '../../../workers/host/attempt-runner.js';

// only the spec matters to how a failure is read
const task = { spec: { type: 'train', hyperparameters: { batchSize: 8192 } } } as unknown as TrainingTask;
const CAP = 2 * 1024 ** 3;

test('a wasm trap the child reports is final, with a code of its own and the field to change', () => {
  for (const e of [
    { name: 'RuntimeError', message: 'memory access out of bounds' },
    { name: 'RuntimeError', message: 'Aborted(). Build with -sASSERTIONS for more info.' },
  ]) {
    const err = childFailure(e, task, CAP) as Error & { code?: string; param?: string };
    assert.equal(err.code, 'wasm_trap');
    assert.equal(err.name, 'UnrecoverableError', 'BullMQ does not retry it');
    assert.equal(err.param, '/hyperparameters/batchSize');
    assert.ok(err.message.includes(e.message));
  }
});

test('a wasm memory that cannot grow is resource exhaustion: final, saying the cap and how to get under it', () => {
  const err = childFailure({ name: 'RuntimeError', message: 'Aborted(Cannot enlarge memory arrays to size 4294967296 bytes (OOM))' }, task, CAP) as Error & {
    code?: string;
  };
  assert.equal(err.code, 'resource_exhausted');
  assert.equal(err.name, 'UnrecoverableError');
  assert.match(err.message, /memory cap of 2147483648 bytes .*lower hyperparameters\.batchSize \(now 8192\) or use a smaller model/);
});

test("any other failure keeps the child's code and finality", () => {
  const final = childFailure({ name: 'UnrecoverableError', message: 'bad data', code: 'dataset_corrupt', param: '/data/train' }, task, CAP) as Error & {
    code?: string;
    param?: string;
  };
  assert.deepEqual([final.name, final.code, final.param], ['UnrecoverableError', 'dataset_corrupt', '/data/train']);
  const transient = childFailure({ name: 'Error', message: 'EIO: i/o error, read' }, task, CAP) as Error & { code?: string };
  assert.deepEqual([transient.name, transient.code], ['Error', undefined]);
});
