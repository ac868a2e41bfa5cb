import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIRST_PROGRESS_MS, PROGRESS_INTERVAL_MS, ProgressThrottle } from '../../../workers/training/progress-throttle.js';

/** A clock the test moves by hand. */
function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('the first progress report comes after FIRST_PROGRESS_MS, then at most one every PROGRESS_INTERVAL_MS', () => {
  const c = clock();
  const throttle = new ProgressThrottle(c.now);
  c.advance(FIRST_PROGRESS_MS - 1);
  assert.equal(throttle.due(false), false);
  c.advance(1);
  assert.equal(throttle.due(false), true, 'the first report, FIRST_PROGRESS_MS after the start');
  c.advance(PROGRESS_INTERVAL_MS - 1);
  assert.equal(throttle.due(false), false, 'the service records every report: no second one within PROGRESS_INTERVAL_MS');
  c.advance(1);
  assert.equal(throttle.due(false), true);
  c.advance(PROGRESS_INTERVAL_MS / 2);
  assert.equal(throttle.due(false), false);
});

test("an epoch's last step is always reported, and the interval counts from it", () => {
  const c = clock();
  const throttle = new ProgressThrottle(c.now);
  assert.equal(throttle.due(true), true, 'final, however soon');
  c.advance(FIRST_PROGRESS_MS);
  assert.equal(throttle.due(false), false, 'after a report, the next waits the full interval');
  c.advance(PROGRESS_INTERVAL_MS - FIRST_PROGRESS_MS);
  assert.equal(throttle.due(false), true);
  assert.equal(throttle.due(true), true);
});

test('over any stretch of steps, the reports that are not final are PROGRESS_INTERVAL_MS apart after the first', () => {
  const c = clock();
  const throttle = new ProgressThrottle(c.now);
  const at: number[] = [];
  // 10,000 steps of 7 ms: 70 s of training
  for (let step = 0; step < 10_000; step++) {
    c.advance(7);
    if (throttle.due(false)) at.push(c.now());
  }
  assert.ok(at.length >= 60 && at.length <= 71, `${at.length} reports over 70 s`);
  for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] >= PROGRESS_INTERVAL_MS);
});
