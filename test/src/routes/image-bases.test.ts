import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHarness, waitForJob, type Harness } from '../../helpers/harness.js';
import { mnistArchive } from '../../helpers/image-archive.js';
import { buildModel, saveModel } from '../../../workers/training/models.js';
import { postForm, uploadDataset } from '../artifacts/fixtures.js';

/**
 * Real images at a network's resolution, end to end: greyscale digits as PNG folders, uploaded
 * at 224x224x3 (cover), fed to a 3-channel CNN base that declares its input convention, in the
 * base's shape though the dataset is stored flat, trained in batches with augmentation.
 */
let h: Harness;
let scratch: string;
let base: any;

before(async () => {
  h = await startHarness();
  scratch = mkdtempSync(join(tmpdir(), 'image-bases-'));
  // a small CNN base taking 224x224x3 images, declaring the [0, 1] convention
  const cnn = buildModel({ kind: 'cnn', hidden: [], filters: [4] }, [224, 224, 3], 2, 1);
  cnn.setUserDefinedMetadata({ tfjsAdapt: { classes: ['0', '1'], preprocessing: { range: [0, 1] } } });
  await saveModel(cnn, join(scratch, 'base'));
  cnn.dispose();
  const res = await postForm(h, '/v1/models', { name: 'cnn-224' }, [
    { field: 'modelJson', content: readFileSync(join(scratch, 'base', 'model.json')), filename: 'model.json' },
    { field: 'weights', content: readFileSync(join(scratch, 'base', 'weights.bin')), filename: 'weights.bin' },
  ]);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  base = res.body;
  assert.deepEqual(base.inputShape, [224, 224, 3]);
  assert.deepEqual(base.preprocessing, { range: [0, 1] });
});
after(async () => {
  await h?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const digits = (fields: Record<string, string>, size: [number, number] = [28, 36]) =>
  mnistArchive({ digits: [0, 1], perClass: 12, size }).then((archive) =>
    uploadDataset(h, { name: 'digits', format: 'images', ...fields }, [{ field: 'file', content: archive, filename: 'digits.tar.gz' }]),
  );

test('greyscale digits uploaded with resize cover at 224x224x3 train a 3-channel base in its shape, by its convention, with augmentation', async () => {
  const d = await digits({ imageSize: '[224, 224]', resize: 'cover', channels: '3' });
  assert.equal(d.status, 'ready', JSON.stringify(d.error));
  assert.deepEqual(d.imageShape, [224, 224, 3]);
  assert.deepEqual(d.featureShape, [150528], 'stored flat, the default layout');
  assert.equal(d.featureDtype, 'uint8');
  assert.deepEqual(d.classCounts, [12, 12]);

  const created = await h.request('POST', '/v1/jobs', {
    type: 'finetune',
    model: { base: base.id },
    strategy: { kind: 'full' },
    data: { train: d.id, test: d.id },
    // one epoch: what is checked is the shape, the convention and that it trains, not what it learns
    hyperparameters: {
      epochs: 1,
      batchSize: 5,
      seed: 3,
      optimizer: { name: 'adam', learningRate: 0.003 },
      augment: { flip: 'horizontal', translate: 0.05, brightness: 0.1 },
    },
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  // the estimate counts the images as the bytes they are stored in
  assert.ok(created.body.estimate.datasetBytes < 2 * 24 * 150528 + 16 * 150528 * 4 + 2 ** 20, JSON.stringify(created.body.estimate));
  const job = await waitForJob(h, created.body.id, 300_000);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.ok(job.result.metrics.testAccuracy >= 0 && job.result.metrics.testAccuracy <= 1);
  const model = (await h.request('GET', `/v1/models/${job.result.modelId}`)).body;
  assert.deepEqual(model.inputShape, [224, 224, 3]);
  assert.deepEqual(model.preprocessing, { range: [0, 1] }, 'the trained model keeps the convention it was fed by');
});

test('a dataset that does not fit the base is a 400 naming both shapes and the way out', async () => {
  const grey = await digits({ imageSize: '[224, 224]', resize: 'contain', channels: '1' });
  const small = await digits({ channels: '3', layout: 'image' }, [32, 32]);
  const refusal = async (train: string) => {
    const res = await h.request('POST', '/v1/jobs', {
      type: 'finetune',
      model: { base: base.id },
      data: { train },
      hyperparameters: { epochs: 1, batchSize: 4, optimizer: { name: 'adam', learningRate: 0.001 } },
    });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    return res.body.errors.find((e: any) => e.pointer === '/model/base')?.detail ?? JSON.stringify(res.body);
  };
  assert.match(
    await refusal(grey.id),
    new RegExp(
      `takes inputs of shape \\[224, 224, 3\\]; dataset ${grey.id} has examples of shape \\[50176\\] \\(images \\[224, 224, 1\\]\\).*upload the images again with channels 3`,
    ),
  );
  assert.match(await refusal(small.id), new RegExp(`dataset ${small.id} has examples of shape \\[32, 32, 3\\].*imageSize \\[224, 224\\] \\(with resize`));
});
