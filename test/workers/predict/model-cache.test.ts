import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelCache } from '../../../workers/predict/model-cache.js';

class Fake {
  disposed = false;
  dispose() {
    this.disposed = true;
  }
}

test('the model cache drops the least recently used past its count or bytes, disposing what it drops', () => {
  const cache = new ModelCache<Fake>({ models: 2, bytes: 100 });
  const [a, b, c, d] = [new Fake(), new Fake(), new Fake(), new Fake()];
  cache.set('a', a, 10);
  cache.set('b', b, 10);
  assert.equal(cache.get('a'), a); // a is now the most recent
  cache.set('c', c, 10);
  assert.equal(cache.get('b'), undefined);
  assert.ok(b.disposed && !a.disposed);
  assert.deepEqual([cache.size, cache.bytes], [2, 20]);

  // bytes: d alone is over the limit, so everything else goes, and d stays (it is in use)
  cache.set('d', d, 150);
  assert.ok(a.disposed && c.disposed && !d.disposed);
  assert.deepEqual([cache.size, cache.bytes], [1, 150]);
  assert.equal(cache.get('d'), d);
});
