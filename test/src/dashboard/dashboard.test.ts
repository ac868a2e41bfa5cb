import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { QUEUE_NAME } from '../../../src/queue/training-queue.js';
import { launchChromium, skipWithoutBrowser, type Browser } from '../../helpers/browser.js';
import { registerMnist, startHarness, trainSpec, waitForJob, type Harness } from '../../helpers/harness.js';

const skip = skipWithoutBrowser();
let h: Harness;
let browser: Browser;
let page: Page;
let data: { train: string; test: string };
const pageErrors: string[] = [];

before(async () => {
  if (skip) return;
  [h, browser] = await Promise.all([startHarness(), launchChromium()]);
  // no test here is about learning: small slices make each of its jobs' epochs short
  data = await registerMnist(h, 500, 100);
  page = await browser.context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
});
after(async () => {
  await browser?.close();
  await h?.stop();
});

test('the dashboard shows a job created through the API, and its loss chart grows while the job trains', { skip }, async () => {
  const create = async (epochs: number) =>
    (
      await h.request(
        'POST',
        '/v1/jobs',
        trainSpec(data, { hyperparameters: { epochs, batchSize: 32, seed: 3, optimizer: { name: 'adam', learningRate: 0.002 } } }),
      )
    ).body;
  // the chart is watched on a job no machine can finish while it is watched (1000 epochs), cancelled once the chart has grown
  const watched = await create(1000);
  await page.goto(`${h.url}/`);
  const row = page.locator(`tr[data-job-id="${watched.id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /train/);

  await row.locator('a').click();
  assert.equal(new URL(page.url()).hash, `#/jobs/${watched.id}`);
  // sample the page while the job runs: (status shown, points in the loss chart)
  const samples: Array<{ status: string | null; points: number }> = [];
  // 300 s bounds a hang, not how fast the machine trains (90 s ran out at load 15)
  const deadline = Date.now() + 300_000;
  const running = () => samples.filter((s) => s.status === 'running' && s.points > 0);
  while (running().length < 2 || running()[0].points >= running().at(-1)!.points) {
    const status = await page
      .locator('.title-row .badge')
      .getAttribute('data-status')
      .catch(() => null);
    const points = Number((await page.locator('[data-chart=loss]').getAttribute('data-points')) ?? 0);
    samples.push({ status, points });
    assert.notEqual(status, 'failed', 'the watched job failed');
    assert.ok(Date.now() < deadline, `the chart never grew while the job ran: ${JSON.stringify(samples.slice(-3))}`);
    await page.waitForTimeout(150);
  }
  for (let i = 1; i < samples.length; i++) assert.ok(samples[i].points >= samples[i - 1].points, 'points only ever get added');
  assert.equal((await h.request('POST', `/v1/jobs/${watched.id}/cancel`)).status, 202);
  await page.locator('.title-row .badge[data-status=cancelled]').waitFor({ timeout: 300_000 });

  // a job that ends by itself: its page once finished
  const job = await create(5);
  const done = await waitForJob(h, job.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  await page.goto(`${h.url}/#/jobs/${job.id}`);
  await page.locator('.title-row .badge[data-status=succeeded]').waitFor();

  // after the end: one accuracy point per epoch, the result, the download link, checkpoints and the full log
  await page.locator('#model-download').waitFor();
  await page.waitForFunction((epochs) => document.querySelector('[data-chart=accuracy]')?.getAttribute('data-points') === String(epochs), 5);
  assert.equal(await page.locator('#model-download').getAttribute('href'), `/v1/models/${done.result.modelId}/model.json`);
  const testAccuracy = await page.locator('#result [data-metric=testAccuracy] dd').innerText();
  assert.equal(Number(testAccuracy), Number(done.result.metrics.testAccuracy.toPrecision(4)));
  const checkpoints = (await h.request('GET', `/v1/jobs/${job.id}/checkpoints`)).body.data;
  await page.waitForFunction((n) => document.querySelectorAll('#checkpoints tbody tr').length === n, checkpoints.length);
  const events = (await h.request('GET', `/v1/jobs/${job.id}/events?limit=1000`)).body.data;
  assert.deepEqual(
    await page.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq')))),
    events.map((e: any) => e.seq),
  );

  if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });

  // the list shows the finished job with its backend
  await page.goto(`${h.url}/#/jobs`);
  await page.locator(`tr[data-job-id="${job.id}"] .badge[data-status=succeeded]`).waitFor();
  assert.match(await page.locator(`tr[data-job-id="${job.id}"]`).innerText(), new RegExp(`${done.backend}`));
  // filtered by a type it is not (every job type is offered), it leaves the list, which names the filter rather than saying "no jobs yet"
  await page.locator('#view select').nth(1).selectOption('predict');
  await page.locator(`tr[data-job-id="${job.id}"]`).waitFor({ state: 'detached' });
  assert.equal((await page.locator('#jobs tbody').innerText()).trim(), 'No predict jobs.');
});

test("the new-job form shows the API's validation errors beside the offending fields, and creates a job from a valid spec", { skip }, async () => {
  await page.goto(`${h.url}/#/new`);
  const bad = trainSpec(data, { hyperparameters: { epochs: 0, batchSize: 64, optimizer: { name: 'sgd', learningRate: 0.1, momentun: 0.9 } } });
  const text = JSON.stringify(bad, null, 2);
  await page.locator('#spec').fill(text);
  await page.locator('#new-job button[type=submit]').click();
  await page.locator('#spec-errors li').first().waitFor();

  const lines = text.split('\n');
  const lineOf = (needle: string) => lines.findIndex((l) => l.includes(needle)) + 1;
  for (const [pointer, needle, detail] of [
    ['/hyperparameters/epochs', '"epochs"', 'must be >= 1'],
    ['/hyperparameters/optimizer/momentun', '"momentun"', 'is not a known property'],
  ] as const) {
    const item = page.locator(`#spec-errors li[data-pointer="${pointer}"]`);
    assert.equal(await item.getAttribute('data-line'), String(lineOf(needle)), `${pointer} is listed at its line`);
    const mark = page.locator(`.editor .marks .line[data-line="${lineOf(needle)}"]`);
    assert.match((await mark.getAttribute('class'))!, /\bbad\b/);
    assert.match(await mark.locator('.msg').innerText(), new RegExp(detail));
    assert.ok(await mark.locator('.msg').isVisible(), 'the message is drawn beside the field');
  }
  assert.equal(await page.locator('.editor .marks .line.bad').count(), 2, 'no other line is marked');

  await page
    .locator('#spec')
    .fill(JSON.stringify(trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, optimizer: { name: 'adam', learningRate: 0.003 } } }), null, 2));
  assert.equal(await page.locator('.editor .marks .line.bad').count(), 0, 'editing clears the stale marks');
  await page.locator('#new-job button[type=submit]').click();
  await page.waitForURL(/#\/jobs\/job_/);
  const id = new URL(page.url()).hash.slice('#/jobs/'.length);
  assert.equal((await h.request('GET', `/v1/jobs/${id}`)).status, 200);
  await page.locator('.title-row .badge[data-status=succeeded]').waitFor({ timeout: 60_000 });
});

test('the dataset page shows the class counts and example images', { skip }, async () => {
  const ds = (await h.request('GET', `/v1/datasets/${data.train}`)).body;
  await page.goto(`${h.url}/#/datasets`);
  await page.locator(`tr[data-dataset-id="${ds.id}"] a`).click();
  await page.locator('#class-counts').waitFor();
  const counts = await page
    .locator('#class-counts tr')
    .evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-class'), Number(r.querySelector('.num')!.textContent.replace(/\D/g, ''))]));
  assert.deepEqual(
    counts,
    ds.classes.map((c: string, i: number) => [c, ds.classCounts[i]]),
  );
  await page.locator('#examples img').first().waitFor();
  const first = page.locator('#examples figure').first();
  assert.match((await first.locator('img').getAttribute('src'))!, /^data:image\/png;base64,/);
  assert.ok(ds.classes.includes(await first.locator('figcaption').innerText()));
  assert.ok(await first.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth === 28), 'the image decodes');
});

test("the Queues link opens the queue board, open like the rest while auth is off, and it lists the training queue's jobs", { skip }, async () => {
  // a job of its own, so the test stands alone; BullMQ keeps it listed once it has finished too
  const created = await h.request(
    'POST',
    '/v1/jobs',
    trainSpec(data, { hyperparameters: { epochs: 1, batchSize: 64, seed: 2, optimizer: { name: 'adam', learningRate: 0.003 } } }),
  );
  assert.equal(created.status, 202, JSON.stringify(created.body));
  await page.goto(`${h.url}/`);
  await page.getByRole('link', { name: 'Queues', exact: true }).click();
  await page.waitForURL(`${h.url}/admin/queues`);
  assert.equal(new URL(page.url()).pathname, '/admin/queues', 'no login wall while auth is off');
  await page.getByText('training', { exact: true }).waitFor();
  await page.getByText(QUEUE_NAME, { exact: true }).click();
  await page.getByText(created.body.id, { exact: true }).first().waitFor();
  assert.ok((await page.getByText(created.body.id, { exact: true }).count()) >= 1, 'the board lists the job');
});

test('no script error on any page', { skip }, () => {
  assert.deepEqual(pageErrors, []);
});
