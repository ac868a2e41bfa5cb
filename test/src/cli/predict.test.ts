import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { startApi, type Api } from '../../helpers/api.js';
import { pattern, SIDE, storeTrainedModel } from '../../helpers/trained-model.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

let api: Api;
let model: string;
let tmp: string;

before(async () => {
  api = await startApi();
  model = await storeTrainedModel(api.deps);
  tmp = mkdtempSync(join(tmpdir(), 'tfjs-adapt-cli-predict-'));
});
after(async () => {
  await api?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The CLI in its own process; its exit code and output. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', TFJS_ADAPT_URL: api.url } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('tfjs-adapt predict: images and JSON examples, most probable class first, --top-k', async () => {
  const png = join(tmp, 'bottom.png');
  await sharp(Buffer.from(pattern(2, 5)), { raw: { width: SIDE, height: SIDE, channels: 1 } })
    .png()
    .toFile(png);
  const byImage = await cli(['predict', model, '--image', png, '--top-k', '2']);
  assert.equal(byImage.code, 0, byImage.stderr);
  const lines = byImage.stdout.trim().split('\n');
  assert.match(lines[0], /^EXAMPLE\s+CLASS\s+PROBABILITY$/);
  assert.match(lines[1], /^bottom\.png\s+bottom\s+[01]\.\d{4}$/);
  assert.equal(lines.length, 3);

  const examples = join(tmp, 'examples.json');
  writeFileSync(examples, JSON.stringify({ examples: [pattern(0, 1), pattern(1, 2)] }));
  const byJson = await cli(['predict', model, '--json', examples, '--top-k', '1']);
  assert.equal(byJson.code, 0, byJson.stderr);
  assert.deepEqual(
    byJson.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/).slice(0, 2)),
    [
      ['examples.json[0]', 'top-left'],
      ['examples.json[1]', 'top-right'],
    ],
  );
});

test('tfjs-adapt predict: wrong usage exits 2, a refused request 1 with the problem', async () => {
  assert.equal((await cli(['predict', model])).code, 2);
  assert.equal((await cli(['predict', model, '--image', 'x.png', '--top-k', 'zero'])).code, 2);
  const wrongShape = join(tmp, 'wrong.json');
  writeFileSync(wrongShape, JSON.stringify([[1, 2, 3]]));
  const refused = await cli(['predict', model, '--json', wrongShape]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /\/examples\/0: has 3 entries; expected 64 numbers/);
});
