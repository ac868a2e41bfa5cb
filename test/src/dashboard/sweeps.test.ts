import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { pino } from 'pino';
import { SweepLauncher } from '../../../src/sweeps/launcher.js';
import { startApi, type Api } from '../../helpers/api.js';
import { launchChromium, skipWithoutBrowser, type Browser } from '../../helpers/browser.js';
import { registerMnist, trainSpec } from '../../helpers/harness.js';

/**
 * The sweep pages in headless Chromium. No worker: the trials' ends are written to the store as a
 * worker host would write them, so what the page shows does not depend on how fast training is.
 */
const skip = skipWithoutBrowser();
let api: Api;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  if (skip) return;
  [api, browser] = await Promise.all([startApi(), launchChromium()]);
  page = await browser.context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
});
after(async () => {
  await browser?.close();
  await api?.stop();
});

test('the sweep page shows the trials table, the best trial and why, and a plot of the objective against each parameter', { skip }, async () => {
  const data = await registerMnist(api, 200, 50);
  const created = await api.request('POST', '/v1/sweeps', {
    template: trainSpec(data),
    parameters: {
      '/hyperparameters/optimizer/learningRate': { min: 0.001, max: 0.1, scale: 'log', gridPoints: 3 },
      '/model/architecture/activation': { values: ['relu', 'tanh'] },
    },
    objective: { metric: 'testAccuracy' },
    algorithm: 'grid',
    maxParallel: 6,
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const sweep = created.body;
  const { store } = api.deps;
  // trials: learningRate 0.001 (relu, tanh), 0.01 (relu, tanh), 0.1 (relu, tanh)
  const accuracies = [0.5, 0.6, 0.9, 0.7, 0.55, 0.65];
  // the source validation accuracy, a validator without target labels, prefers trial 4
  const validation = [0.8, 0.7, 0.85, 0.6, 0.9, 0.75];
  for (const [i, t] of sweep.trials.entries()) {
    await store.jobs.started(t.jobId, 1);
    await store.jobs.epochMetrics(t.jobId, 1, 1, { loss: 1, accuracy: 0.5 });
    await store.jobs.succeeded(
      t.jobId,
      1,
      { modelId: `mdl_${t.jobId.slice(4)}`, metrics: { testAccuracy: accuracies[i], valAccuracy: validation[i] } },
      async () => undefined,
    );
  }
  await new SweepLauncher({ ...api.deps, log: pino({ level: 'silent' }), maxActiveJobs: 100, webhookAllowedHosts: [] }).advance(sweep.id);

  await page.goto(`${api.url}/#/sweeps`);
  await page.locator(`tr[data-sweep-id="${sweep.id}"] .badge[data-status=succeeded]`).waitFor();
  assert.match(await page.locator(`tr[data-sweep-id="${sweep.id}"]`).innerText(), /6\/6\s+maximize testAccuracy\s+0\.9/);
  await page.locator(`tr[data-sweep-id="${sweep.id}"] a`).click();

  await page.locator('#trials tbody tr').first().waitFor();
  assert.equal(await page.locator('#trials tbody tr').count(), 6);
  assert.equal(await page.locator('#trials tr.best').getAttribute('data-trial'), '2');
  assert.match(await page.locator('#best').innerText(), /trial 2 has the highest testAccuracy \(0.9 at epoch 1\) of the 6 trials/);
  assert.equal(await page.locator('#validator-picks').innerText(), 'Validators without target labels pick: valAccuracy → trial 4.');
  const header = await page.locator('#trials thead').innerText();
  assert.match(header, /\/hyperparameters\/optimizer\/learningRate\s+\/model\/architecture\/activation\s+testAccuracy/, 'parameters in pointer order');
  // one plot per parameter, each with a point per finished trial, drawn by uPlot
  assert.equal(await page.locator('#parameter-plots .chart').count(), 2);
  for (const chart of await page.locator('#parameter-plots .chart').all()) {
    assert.equal(await chart.getAttribute('data-points'), '6');
    assert.equal(await chart.locator('canvas').count(), 1);
  }
  assert.deepEqual(pageErrors, []);
});
