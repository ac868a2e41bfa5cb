/**
 * The feature cache's common path through the whole service, shared by the tests with and without
 * an object store: train a small MLP base, then run the same freeze fine-tune twice on it (the
 * first builds the cache, the second should find it). Each test asserts what its setting adds.
 */
import assert from 'node:assert/strict';
import { registerMnist, trainSpec, waitForJob, type Harness } from './harness.js';

export interface FreezeRuns {
  data: { train: string; test: string };
  base: string;
  /** the first freeze fine-tune, which built the cache (its status and `featureCache.status` already checked) */
  first: any;
  /** runs the same fine-tune again and returns it once it succeeded */
  again: () => Promise<any>;
}

/** Registers the data, trains the base and runs the first freeze fine-tune; `again` runs the same fine-tune once more. */
export async function freezeOnce(h: Harness, opts: { examples: number }): Promise<FreezeRuns> {
  const data = await registerMnist(h, opts.examples, 200);
  const hyperparameters = (batchSize: number) => ({ epochs: 1, batchSize, seed: 1, optimizer: { name: 'adam', learningRate: 0.003 } });
  const pre = await waitForJob(h, (await h.request('POST', '/v1/jobs', trainSpec(data, { hyperparameters: hyperparameters(64) }))).body.id);
  assert.equal(pre.status, 'succeeded', JSON.stringify(pre.error));
  const base = pre.result.modelId as string;
  const finetune = {
    type: 'finetune',
    model: { base },
    strategy: { kind: 'freeze', newHead: true, featureLayer: 'dense_1' },
    data,
    hyperparameters: hyperparameters(32),
  };
  const again = async () => {
    const job = await waitForJob(h, (await h.request('POST', '/v1/jobs', finetune)).body.id);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    return job;
  };
  const first = await again();
  assert.equal(first.result.featureCache.status, 'built');
  return { data, base, first, again };
}
