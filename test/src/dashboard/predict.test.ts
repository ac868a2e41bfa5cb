import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { launchChromium, skipWithoutBrowser, type Browser } from '../../helpers/browser.js';
import { startApi, type Api } from '../../helpers/api.js';
import { pattern, SIDE, storeTrainedModel } from '../../helpers/trained-model.js';

const skip = skipWithoutBrowser();
let api: Api;
let browser: Browser;
let page: Page;
let model: string;
const pageErrors: string[] = [];

before(async () => {
  if (skip) return;
  [api, browser] = await Promise.all([startApi(), launchChromium()]);
  model = await storeTrainedModel(api.deps);
  page = await browser.context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
});
after(async () => {
  await browser?.close();
  await api?.stop();
});

const png = (c: number) =>
  sharp(Buffer.from(pattern(c, 2)), { raw: { width: SIDE, height: SIDE, channels: 1 } })
    .resize(64, 64, { kernel: 'nearest' })
    .png()
    .toBuffer();

test("images given on a model's page are predicted, most probable class first", { skip }, async () => {
  await page.goto(`${api.url}/#/models/${model}`);
  await page.locator('#drop-zone').waitFor();
  await page.locator('#predict-input').setInputFiles([
    { name: 'bottom.png', mimeType: 'image/png', buffer: await png(2) },
    { name: 'left.png', mimeType: 'image/png', buffer: await png(0) },
  ]);
  await page.locator('.prediction[data-file="left.png"]').waitFor();
  const first = async (file: string) => page.locator(`.prediction[data-file="${file}"] tr`).first().getAttribute('data-class');
  assert.equal(await first('bottom.png'), 'bottom');
  assert.equal(await first('left.png'), 'top-left');
  assert.equal(await page.locator('.prediction[data-file="bottom.png"] tr').count(), 3);

  // a file that is not an image gets the service's problem, not a broken page
  await page.locator('#predict-input').setInputFiles([{ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not an image') }]);
  await page.locator('#predict-problem .notice.error').waitFor();
  assert.match(await page.locator('#predict-problem').innerText(), /cannot be decoded as an image/);
  assert.deepEqual(pageErrors, []);
});
