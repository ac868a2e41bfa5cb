import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import sharp from 'sharp';
import { launchChromium, skipWithoutBrowser, type Browser } from '../../helpers/browser.js';
import { startApi, type Api } from '../../helpers/api.js';
import { mnistArchive } from '../../helpers/image-archive.js';
import { CLASSES, pattern, SIDE, storeTrainedModel } from '../../helpers/trained-model.js';

const skip = skipWithoutBrowser();
let api: Api;
let browser: Browser;
let page: Page;
let dir: string;
const pageErrors: string[] = [];
/** the model check and conversions run in children and threads of a loaded machine: generous, never a measure */
const SETTLED = { timeout: 80_000 };

before(async () => {
  if (skip) return;
  // imports may fetch from this machine: the failing import below asks the service itself
  [api, browser] = await Promise.all([startApi({ MODEL_IMPORT_ALLOWED_HOSTS: '127.0.0.1' }), launchChromium()]);
  dir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-upload-'));
  page = await browser.context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
});
after(async () => {
  await browser?.close();
  await api?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The panel's upload ended (refused, or its badge no longer `validating`) with `status`. */
async function settled(panel: Locator, status: string) {
  const end = panel.locator('.upload-status .badge:not([data-status="validating"]), .upload-status .problem, #dataset-chosen.error');
  await end.first().waitFor(SETTLED);
  const shown = await panel.innerText();
  assert.equal(
    await panel
      .locator('.upload-status .badge')
      .getAttribute('data-status', { timeout: 1000 })
      .catch(() => null),
    status,
    shown,
  );
}

/** A fresh upload page (a goto to the same hash would keep the last test's form). */
async function openPanel(id: string): Promise<Locator> {
  await page.goto('about:blank');
  await page.goto(`${api.url}/#/upload`);
  const panel = page.locator(`#${id}`);
  await panel.waitFor();
  return panel;
}

test('an image archive uploads with its options, its progress shown, and ends ready', { skip }, async () => {
  const archive = join(dir, 'digits.tar.gz');
  writeFileSync(archive, await mnistArchive({ digits: [1, 7], perClass: 4, size: [12, 12] }));
  const panel = await openPanel('upload-dataset');
  // the options come from the OpenAPI form: resize is a menu of its enum
  await panel.locator('#dataset-resize option[value="cover"]').waitFor({ state: 'attached' });
  await panel.locator('#dataset-archive').setInputFiles(archive);
  assert.equal(await panel.locator('#dataset-name').inputValue(), 'digits');
  await panel.locator('#dataset-imageSize').fill('[10, 10]');
  await panel.locator('#dataset-resize').selectOption('cover');
  await panel.locator('#dataset-upload button[type=submit]').click();
  await settled(panel, 'ready');

  const bar = panel.locator('.upload-status [role=progressbar]');
  assert.equal(await bar.getAttribute('aria-valuenow'), '100');
  assert.match(await bar.innerText(), /^sent .+ of .+/);
  assert.match(await panel.locator('.upload-status .summary').innerText(), /8 examples in 2 classes \(1, 7\), images \[10, 10, 1\]/);
  const id = await panel.locator('.upload-status a[href^="#/datasets/"] .mono').innerText();
  const d = (await api.request('GET', `/v1/datasets/${id}`)).body;
  assert.deepEqual([d.source.upload, d.source.imageSize, d.source.resize], ['images', [10, 10], 'cover']);
});

test('a folder of photos becomes an archive in the browser and a dataset with a class per subfolder', { skip }, async () => {
  const folder = join(dir, 'pets');
  for (const [c, cls] of ['cat', 'dog'].entries()) {
    mkdirSync(join(folder, cls), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const png = await sharp(Buffer.from(pattern(c, i)), { raw: { width: SIDE, height: SIDE, channels: 1 } })
        .toColourspace('b-w')
        .png()
        .toBuffer();
      writeFileSync(join(folder, cls, `${i}.png`), png);
    }
  }
  writeFileSync(join(folder, 'cat', 'notes.txt'), 'not a photo: left out');
  // pets/dog/<94 bytes> is over tar's 100-byte name field: the folders go in its prefix field
  writeFileSync(join(folder, 'dog', `${'long-name-'.repeat(9)}.png`), readFileSync(join(folder, 'dog', '0.png')));
  const panel = await openPanel('upload-dataset');
  await panel.locator('#dataset-folder').setInputFiles(folder);
  assert.match(await panel.locator('#dataset-chosen').innerText(), /Folder pets: 7 photos in 2 classes \(cat 3, dog 4\)/);
  await panel.locator('#dataset-upload button[type=submit]').click();
  await settled(panel, 'ready');
  assert.equal(await panel.locator('.upload-status [role=progressbar]').getAttribute('aria-valuenow'), '100');
  assert.match(await panel.locator('.upload-status .summary').innerText(), /7 examples in 2 classes \(cat, dog\), images \[8, 8, 1\]/);
});

test('a refused upload shows the field it points at; a file that is no archive ends failed with the reason', { skip }, async () => {
  const bogus = join(dir, 'photos.zip');
  writeFileSync(bogus, 'not an archive at all');
  const panel = await openPanel('upload-dataset');
  await panel.locator('#dataset-imageSize').fill('[5000, 5000]');
  await panel.locator('#dataset-archive').setInputFiles(bogus);
  await panel.locator('#dataset-upload button[type=submit]').click();
  const hit = panel.locator('.upload-status li[data-pointer="/imageSize"]');
  await hit.waitFor(SETTLED);
  assert.match(await hit.innerText(), /\/imageSize must be \[height, width\], each 1 to 4096/);

  await panel.locator('#dataset-imageSize').fill('');
  await panel.locator('#dataset-upload button[type=submit]').click();
  await settled(panel, 'failed');
  assert.match(await panel.locator('.upload-status [data-code="unsupported_archive"]').innerText(), /not a \.zip, \.tar or \.tar\.gz archive.*\(field file\)/s);
});

test('a base model uploads as model.json and two weight shards and ends ready; a failed import shows its pointer', { skip }, async () => {
  const model = await storeTrainedModel(api.deps);
  const json = (await api.request('GET', `/v1/models/${model}/model.json`)).body;
  const weights = Buffer.from(await (await fetch(`${api.url}/v1/models/${model}/weights.bin`)).arrayBuffer());
  json.weightsManifest[0].paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
  const files = [join(dir, 'model.json'), join(dir, 'group1-shard1of2.bin'), join(dir, 'group1-shard2of2.bin')];
  writeFileSync(files[0], JSON.stringify(json));
  writeFileSync(files[1], weights.subarray(0, 256));
  writeFileSync(files[2], weights.subarray(256));

  const panel = await openPanel('upload-model');
  await panel.locator('#model-files').setInputFiles(files);
  assert.match(await panel.locator('#model-chosen').innerText(), /model\.json and 2 weight files/);
  await panel.locator('#model-name').fill('patterns-base');
  await panel.locator('#model-upload button[type=submit]').click();
  await settled(panel, 'ready');
  assert.equal(await panel.locator('.upload-status [role=progressbar]').getAttribute('aria-valuenow'), '100');
  assert.match(await panel.locator('.upload-status .summary').innerText(), new RegExp(`\\[${SIDE * SIDE}\\]; classes ${CLASSES.join(', ')}`));
  assert.match(await panel.locator('.upload-status .status-line').innerText(), /patterns-base/);

  // an import is answered `validating` at once and followed until it fails, with the pointer at the fault
  const panel2 = await openPanel('upload-model');
  await panel2.locator('#model-url').fill(`${api.url}/v1/models/mdl_absent/model.json`);
  await panel2.locator('#model-upload button[type=submit]').click();
  await settled(panel2, 'failed');
  assert.match(await panel2.locator('.upload-status .notice.error').innerText(), /\/source\/url/);
  assert.deepEqual(pageErrors, []);
});
