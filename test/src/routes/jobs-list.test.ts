/** Listing jobs: newest first, filtered by status and type, paged by cursor. The API alone: the jobs stay queued. */
import assert from 'node:assert/strict';
import { setImmediate } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { startApi, type Api } from '../../helpers/api.js';
import { registerMnist, trainSpec } from '../../helpers/harness.js';

let api: Api;
const created: string[] = [];

before(async () => {
  api = await startApi();
  const data = await registerMnist(api, 100, 50);
  for (let i = 0; i < 3; i++) {
    // ids sort by their millisecond of creation: start each job in a later one than the last
    const last = Date.now();
    while (Date.now() === last) await setImmediate();
    const res = await api.request('POST', '/v1/jobs', trainSpec(data));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    created.push(res.body.id);
  }
});
after(() => api?.stop());

test('jobs are listed newest first', async () => {
  const { body } = await api.request('GET', '/v1/jobs');
  assert.deepEqual(
    body.data.map((j: any) => j.id),
    [...created].reverse(),
  );
});

test('a page ends where the next begins, in the same order', async () => {
  const first = (await api.request('GET', '/v1/jobs?limit=2')).body;
  assert.equal(first.hasMore, true);
  const second = (await api.request('GET', `/v1/jobs?limit=2&after=${first.nextCursor}`)).body;
  assert.equal(second.hasMore, false);
  assert.deepEqual(
    [...first.data, ...second.data].map((j: any) => j.id),
    [...created].reverse(),
  );
});

test('filters by status and type keep only what matches', async () => {
  assert.deepEqual(
    (await api.request('GET', '/v1/jobs?status=queued&type=train')).body.data.map((j: any) => j.id),
    [...created].reverse(),
  );
  assert.deepEqual((await api.request('GET', '/v1/jobs?status=succeeded')).body.data, []);
  assert.deepEqual((await api.request('GET', '/v1/jobs?type=finetune')).body.data, []);
});
