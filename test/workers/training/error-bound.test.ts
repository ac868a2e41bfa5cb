import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorBound, errorBoundStandardError } from '../../../workers/training/error-bound.js';
import { VALIDATORS } from '../../../src/jobs/validators.js';

test('errorBound is the source validation error plus half the proxy A-distance, 2 acc_D - 1', () => {
  // source error 0.2; a domain classifier at 0.9 held-out accuracy: proxy A-distance 2(1 - 2 * 0.1) = 1.6, half of it 0.8
  assert.ok(Math.abs(errorBound({ valAccuracy: 0.8, linearDomainAccuracy: 0.9 })! - 1.0) < 1e-12);
  // domains the classifier cannot tell apart: the bound is the source error alone
  assert.ok(Math.abs(errorBound({ valAccuracy: 0.8, linearDomainAccuracy: 0.5 })! - 0.2) < 1e-12);
  // below chance is no distance (the proxy A-distance is floored at 0), not a bonus
  assert.ok(Math.abs(errorBound({ valAccuracy: 0.8, linearDomainAccuracy: 0.3 })! - 0.2) < 1e-12);
  // better aligned features at the same source error: a lower bound
  assert.ok(errorBound({ valAccuracy: 0.8, linearDomainAccuracy: 0.7 })! < errorBound({ valAccuracy: 0.8, linearDomainAccuracy: 0.9 })!);
});

test('errorBound needs both of its inputs: a job without data.validation reports none', () => {
  assert.equal(errorBound({ linearDomainAccuracy: 0.9 }), undefined);
  assert.equal(errorBound({ valAccuracy: 0.9 }), undefined);
  assert.equal(VALIDATORS.errorBound.goal, 'minimize');
  assert.equal(VALIDATORS.errorBound.needs, 'target+validation');
});

test("errorBound's standard error is its source term's, the binomial one of the validation error", () => {
  // 50 labels at 82% (the few-label sweep): ±0.054; 1000 at the same accuracy: ±0.012
  assert.ok(Math.abs(errorBoundStandardError(0.82, 50) - Math.sqrt((0.18 * 0.82) / 50)) < 1e-12);
  assert.ok(Math.abs(errorBoundStandardError(0.82, 50) - 0.0543) < 1e-3);
  assert.ok(errorBoundStandardError(0.82, 1000) < errorBoundStandardError(0.82, 50) / 4);
  assert.equal(errorBoundStandardError(1, 50), 0);
});
