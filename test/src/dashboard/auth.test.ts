import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page, Response } from 'playwright-core';
import { QUEUE_NAME } from '../../../src/queue/training-queue.js';
import { launchChromium, skipWithoutBrowser, type Browser } from '../../helpers/browser.js';
import { startHarness, trainSpec, type Harness } from '../../helpers/harness.js';
import { mnistArchive } from '../../helpers/image-archive.js';

const ADMIN = 'admin-token-0123456789';
const TEAM = 'team-token-01234567890';
const skip = skipWithoutBrowser();
let h: Harness;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
let teamJob: any;
let adminJob: any;

/** A one-epoch job of the tenant with this token, on its own small dataset. */
async function jobOf(token: string) {
  const as = { authorization: `Bearer ${token}` };
  const train = await h.request('POST', '/v1/datasets', { name: 'train', source: { builtin: 'mnist', split: 'train', limit: 300 } }, as);
  const created = await h.request(
    'POST',
    '/v1/jobs',
    trainSpec({ train: train.body.id }, { hyperparameters: { epochs: 2, batchSize: 32, seed: 5, optimizer: { name: 'adam', learningRate: 0.003 } } }),
    as,
  );
  assert.equal(created.status, 202, JSON.stringify(created.body));
  return created.body;
}

before(async () => {
  if (skip) return;
  [h, browser] = await Promise.all([startHarness({ API_KEYS: `ops:${ADMIN},team:${TEAM}`, ADMIN_TENANTS: 'ops' }), launchChromium()]);
  teamJob = await jobOf(TEAM);
  adminJob = await jobOf(ADMIN);
  page = await browser.context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
});
after(async () => {
  await browser?.close();
  await h?.stop();
});

test("with auth on, the dashboard asks for a token, then shows that tenant's jobs live and downloads its model with the token", { skip }, async () => {
  await page.goto(`${h.url}/`);
  await page.locator('#jobs + p.error').waitFor();
  assert.match(await page.locator('#jobs + p.error').innerText(), /type an API key into the token field/);

  await page.locator('#token').fill(TEAM);
  await page.locator('#token').press('Tab');
  const row = page.locator(`tr[data-job-id="${teamJob.id}"]`);
  await row.waitFor();
  assert.equal(await page.locator(`tr[data-job-id="${adminJob.id}"]`).count(), 0, "another tenant's job is not listed");

  // the job page follows the event stream with the token to the end
  await row.locator('a').click();
  await page.locator('.title-row .badge[data-status=succeeded]').waitFor({ timeout: 90_000 });
  await page.waitForFunction(() => Number(document.querySelector('[data-chart=accuracy]')?.getAttribute('data-points')) === 2);

  // a plain link would go without the token and fetch a 401 instead of the model
  const [saved] = await Promise.all([page.waitForEvent('download'), page.locator('#model-download').click()]);
  assert.equal(saved.suggestedFilename(), 'model.json');
  const model = JSON.parse(readFileSync(await saved.path(), 'utf8'));
  assert.ok(model.modelTopology && model.weightsManifest, `a tfjs model.json: ${JSON.stringify(model).slice(0, 200)}`);
});

test("an upload goes with the token: without one the page says where it goes, with it the dataset is the tenant's", { skip }, async () => {
  const archive = join(mkdtempSync(join(tmpdir(), 'tfjs-adapt-auth-upload-')), 'digits.tar.gz');
  writeFileSync(archive, await mnistArchive({ digits: [0, 1], perClass: 2, size: [8, 8] }));
  await page.goto(`${h.url}/#/upload`);
  await page.locator('#token').fill('');
  await page.locator('#token').press('Tab');
  const panel = page.locator('#upload-dataset');
  await panel.locator('#dataset-archive').setInputFiles(archive);
  await panel.locator('#dataset-upload button[type=submit]').click();
  await panel.locator('.upload-status .problem').waitFor();
  assert.match(await panel.locator('.upload-status .problem').innerText(), /type an API key into the token field/);

  await page.locator('#token').fill(TEAM);
  await page.locator('#token').press('Tab');
  await panel.locator('#dataset-archive').setInputFiles(archive);
  await panel.locator('#dataset-upload button[type=submit]').click();
  await panel.locator('.upload-status .badge[data-status="ready"]').waitFor({ timeout: 60_000 });
  const id = await panel.locator('.upload-status a[href^="#/datasets/"] .mono').innerText();
  assert.equal((await h.request('GET', `/v1/datasets/${id}`, undefined, { authorization: `Bearer ${TEAM}` })).status, 200);
  rmSync(dirname(archive), { recursive: true, force: true });
});

test("the queue board makes the browser ask for credentials, and shows an admin tenant the training queue with every tenant's jobs", { skip }, async () => {
  const board = await browser.context.newPage();
  board.on('pageerror', (err) => pageErrors.push(err.message));
  const challenges: Response[] = [];
  board.on('response', (r) => r.status() === 401 && challenges.push(r));
  // headless chromium has nobody to type into the prompt, so it gives up on the page
  await assert.rejects(board.goto(`${h.url}/admin/queues`), /ERR_INVALID_AUTH_CREDENTIALS/);
  assert.equal(await challenges[0]?.headerValue('www-authenticate'), 'Basic realm="tfjs-adapt admin"');

  await browser.context.setHTTPCredentials({ username: 'ops', password: ADMIN, origin: h.url });
  assert.equal((await board.goto(`${h.url}/admin/queues`))?.status(), 200);
  await board.getByText('training', { exact: true }).waitFor();
  await board.getByText(QUEUE_NAME, { exact: true }).click();
  for (const job of [teamJob, adminJob]) await board.getByText(job.id, { exact: true }).first().waitFor();
  await board.close();
});

test('no script error on any page', { skip }, () => {
  assert.deepEqual(pageErrors, []);
});
