import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LocalCache } from '../../../src/artifacts/local-cache.js';

const root = mkdtempSync(join(tmpdir(), 'tfjs-adapt-cache-'));
after(() => rmSync(root, { recursive: true, force: true }));
const dir = (name: string) => {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
};

test('past its cap the cache deletes the least recently used copies, never one in use, never the newest', async () => {
  const cache = new LocalCache(250);
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(dir) as [string, string, string, string];
  cache.touch(a, 100);
  const releaseA = cache.pin(a);
  cache.touch(b, 100);
  cache.touch(c, 100);
  assert.equal(cache.bytes, 300);
  // a is the least recently used but in use: b goes
  assert.deepEqual(await cache.evict(), [b]);
  assert.ok(!existsSync(b) && existsSync(a) && existsSync(c));
  releaseA();
  releaseA(); // a second release changes nothing
  cache.touch(d, 500);
  // over the cap even without a and c: both go, d (the newest) stays alone over the cap
  assert.deepEqual(await cache.evict(), [a, c]);
  assert.ok(existsSync(d));
  assert.equal(cache.bytes, 500);
  cache.forget(d);
  assert.equal(cache.bytes, 0);
});
