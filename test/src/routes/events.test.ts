import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { registerMnist, startHarness, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';
import { readSse } from '../../helpers/sse.js';

let h: Harness;
let data: { train: string; test: string };

before(async () => {
  h = await startHarness();
  data = await registerMnist(h, 500, 100);
});
after(() => h?.stop());

const eventsUrl = (id: string) => `${h.url}/v1/jobs/${id}/events`;

test('an SSE client that drops mid-job and resumes with Last-Event-ID gets every later event once, in order, then the end', async () => {
  const job = (
    await h.request(
      'POST',
      '/v1/jobs',
      trainSpec(data, { hyperparameters: { epochs: 4, batchSize: 32, seed: 2, optimizer: { name: 'adam', learningRate: 0.002 } } }),
    )
  ).body;
  // drop the connection in the middle of training: after the first epoch's metrics
  const first = await readSse(eventsUrl(job.id), { stopAfter: (m) => m.event === 'metrics' });
  assert.equal(first.ended, false);
  const lastSeen = first.messages[first.messages.length - 1].id;
  const second = await readSse(eventsUrl(job.id), { lastEventId: lastSeen });
  assert.equal(second.ended, true, 'the server ends the stream after the terminal status');

  const seen = [...first.messages, ...second.messages].map((m) => m.id);
  assert.deepEqual(
    seen,
    seen.map((_, i) => i + 1),
    'every event exactly once, in order',
  );
  const final = second.messages[second.messages.length - 1];
  assert.equal(final.event, 'status');
  assert.equal(final.data.data.status, 'succeeded');
  assert.ok(
    second.messages.some((m) => m.event === 'metrics'),
    'the resumed part still had training events in it',
  );

  const log = (await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data;
  assert.deepEqual(
    [...first.messages, ...second.messages].map((m) => m.data),
    log,
  );
});

test('a late subscriber gets the whole log and the stream ends; resuming after the end ends at once', async () => {
  const job = (
    await h.request(
      'POST',
      '/v1/jobs',
      trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 5, optimizer: { name: 'adam', learningRate: 0.002 } } }),
    )
  ).body;
  await waitForJob(h, job.id);
  const late = await readSse(eventsUrl(job.id));
  assert.equal(late.ended, true);
  const log = (await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data;
  assert.deepEqual(
    late.messages.map((m) => m.data),
    log,
  );
  assert.deepEqual(
    late.messages.map((m) => m.event),
    log.map((e: any) => e.type),
  );

  const resumed = await readSse(eventsUrl(job.id), { lastEventId: log[log.length - 1].seq, timeoutMs: 5000 });
  assert.equal(resumed.ended, true);
  assert.equal(resumed.messages.length, 0);

  const middle = await readSse(eventsUrl(job.id), { lastEventId: 2 });
  assert.deepEqual(
    middle.messages.map((m) => m.id),
    log.slice(2).map((e: any) => e.seq),
  );
});

test('several concurrent streams of one job see the same events', async () => {
  const job = (
    await h.request(
      'POST',
      '/v1/jobs',
      trainSpec(data, { hyperparameters: { epochs: 2, batchSize: 64, seed: 9, optimizer: { name: 'adam', learningRate: 0.002 } } }),
    )
  ).body;
  const streams = await Promise.all([readSse(eventsUrl(job.id)), readSse(eventsUrl(job.id)), readSse(eventsUrl(job.id))]);
  for (const s of streams)
    assert.deepEqual(
      s.messages.map((m) => m.id),
      streams[0].messages.map((m) => m.id),
    );
  assert.equal(streams[0].messages.at(-1)!.data.data.status, 'succeeded');
});
