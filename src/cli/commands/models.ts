import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { arg, type Command } from '../context.js';

/** A weights path from a model.json must stay inside the target directory. */
const SAFE_FILE = /^[A-Za-z0-9._-]+$/;

/** Writes `file` whole or not at all (a temp file renamed into place). */
export async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.part-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** models download <id> <dir>: model.json and the weight files its manifest names, as tf.loadLayersModel reads them. */
export const modelsDownload: Command = async (ctx) => {
  const id = arg(ctx, 0, '<model id>');
  const dir = arg(ctx, 1, '<dir> to write model.json and its weights into');
  const modelPath = `/v1/models/${encodeURIComponent(id)}/model.json`;
  const res = await ctx.client.fetch(modelPath, { headers: { accept: 'application/json' } });
  const text = await res.clone().text();
  const model = await ctx.client.parse<{ weightsManifest?: Array<{ paths: string[] }> }>('GET', modelPath, res);
  const paths = (model.weightsManifest ?? []).flatMap((g) => g.paths);
  for (const p of paths) {
    if (!SAFE_FILE.test(p) || p === '.' || p === '..')
      throw new Error(`model ${id}: model.json names the weights file ${JSON.stringify(p)}; expected a plain file name beside model.json`);
  }
  await mkdir(dir, { recursive: true });
  // weights first: a directory with model.json in it is then always complete
  for (const p of paths) {
    const wpath = `/v1/models/${encodeURIComponent(id)}/${p}`;
    const wres = await ctx.client.fetch(wpath);
    if (!wres.ok) await ctx.client.parse('GET', wpath, wres);
    const bytes = new Uint8Array(await wres.arrayBuffer());
    await writeAtomic(join(dir, p), bytes);
    ctx.stderr.write(`wrote ${join(dir, p)} (${bytes.byteLength} bytes)\n`);
  }
  await writeAtomic(join(dir, 'model.json'), text);
  ctx.stdout.write(`${join(dir, 'model.json')}\n`);
  return 0;
};
