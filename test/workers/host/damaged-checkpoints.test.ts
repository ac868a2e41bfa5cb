/**
 * A job resumed on a host without its files, whose newest checkpoint the object store (a real
 * S3 server, s3rver) holds damaged: the host passes it over with a warn log event naming it,
 * the child resumes from the one before, and the job ends in that one attempt, rather than being
 * retried as artifacts_unavailable on the same bytes until JOB_ATTEMPTS ran out.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { registerMnist, submitAndPause, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';
import { startS3Harness, type S3Server } from '../../helpers/s3.js';

let s3: S3Server;
let h: Harness;
let stop = async () => {};

// short backoffs: without the fix this test fails once the retries run out, not at its timeout
before(async () => ({ s3, h, stop } = await startS3Harness({ JOB_BACKOFF_MS: '100' })));
after(() => stop());

const checkpointName = (c: { epoch: number; step: number }) => `epoch-${String(c.epoch).padStart(4, '0')}-step-${String(c.step).padStart(8, '0')}`;

test(
  'a checkpoint whose manifest the store holds cut short is passed over with a warn event; the job resumes from the one before',
  { timeout: 600_000 },
  async () => {
    const data = await registerMnist(h, 1000, 100);
    const asked = trainSpec(data, { hyperparameters: { epochs: 3, batchSize: 32, seed: 5, optimizer: { name: 'adam', learningRate: 0.003 } } });
    // paused in epoch 2 or later: epoch 1's checkpoint is there besides the pause's
    const { paused } = await submitAndPause(h, asked, 2);
    const listed = (await h.request('GET', `/v1/jobs/${paused.id}/checkpoints`)).body.data as { epoch: number; step: number }[];
    const [newest, before] = listed.sort((x, y) => y.step - x.step).map(checkpointName);
    assert.ok(before, `two checkpoints at least: ${JSON.stringify(listed)}`);

    const manifest = `jobs/${paused.id}/checkpoints/${newest}/.manifest.json`;
    const text = await s3.text(manifest);
    // cut after a colon: V8 then says 'Unexpected end of JSON input', the message of the chaos run's loop
    await s3.put(manifest, text.slice(0, text.indexOf('"name":') + 7));
    // a host that never saw the job's checkpoints: they must come from the store
    rmSync(join(h.dataDir, 'artifacts', 'jobs'), { recursive: true, force: true });

    assert.equal((await h.request('POST', `/v1/jobs/${paused.id}/resume`)).status, 202);
    const done = await waitForJob(h, paused.id, 300_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.attempt, paused.attempt + 1, 'one attempt after the pause: no retry');

    const events = (await h.request('GET', `/v1/jobs/${paused.id}/events?limit=1000`)).body.data as { type: string; data: any }[];
    const logs = events.filter((e) => e.type === 'log').map((e) => e.data);
    const warned = logs.findIndex(
      (l) =>
        l.level === 'warn' &&
        l.message.startsWith(`checkpoint ${newest} is damaged in the object store and was passed over: `) &&
        l.message.includes(`/artifacts/${manifest} is not valid JSON (Unexpected end of JSON input)`),
    );
    assert.ok(warned >= 0, `a warn event names the checkpoint and what is wrong: ${JSON.stringify(logs)}`);
    const resumed = logs.findIndex((l) => l.message.startsWith(`resuming from checkpoint ${before}: `));
    assert.ok(resumed > warned, `then the child resumes from ${before}: ${JSON.stringify(logs)}`);
    assert.ok(!events.some((e) => e.data.error?.code === 'artifacts_unavailable'), 'never retried as the store being away');
  },
);
