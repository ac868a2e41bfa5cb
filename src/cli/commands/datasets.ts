import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { arg, type Command, type Context } from '../context.js';
import { table } from '../format.js';
import { UsageError } from '../usage-error.js';
import { limitOption } from './jobs.js';

const FORMATS = ['csv', 'jsonl', 'idx', 'images'];

/** The upload format from the file names, when they say it unambiguously. */
function inferFormat(files: string[]): string | undefined {
  if (files.length === 2) return 'idx';
  const f = files[0].toLowerCase();
  if (f.endsWith('.csv')) return 'csv';
  if (f.endsWith('.jsonl') || f.endsWith('.ndjson')) return 'jsonl';
  if (/\.(zip|tar|tar\.gz|tgz)$/.test(f)) return 'images';
  return undefined;
}

/** --field key=value pairs: the format's options (labelColumn, classes, imageShape, layout, scale, ...), sent as they are. */
function extraFields(pairs: string[] | undefined): Array<[string, string]> {
  return (pairs ?? []).map((p) => {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`--field ${JSON.stringify(p)} is not valid: expected key=value, e.g. --field labelColumn=digit`);
    return [p.slice(0, i), p.slice(i + 1)];
  });
}

async function fileBlob(path: string): Promise<Blob> {
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a regular file');
    // streamed from disk as the request is sent, so large uploads do not sit in memory
    return await openAsBlob(path);
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function waitReady(ctx: Context, id: string): Promise<any> {
  for (;;) {
    const ds = await ctx.client.json('GET', `/v1/datasets/${encodeURIComponent(id)}`);
    if (ds.status !== 'validating') return ds;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** upload <file> (csv, jsonl, images archive) or <images.idx> <labels.idx> (idx); prints the dataset id. */
export const datasetsUpload: Command = async (ctx) => {
  const files = ctx.args.length > 0 ? ctx.args : [arg(ctx, 0, '<file> (or <images> <labels> for idx)')];
  if (files.length > 2) throw new UsageError(`expected one file, or two for idx (images and labels); got ${files.length}`);
  const name = ctx.options.name;
  if (!name) throw new UsageError('missing --name <name> for the dataset');
  const format = ctx.options.format ?? inferFormat(files);
  if (!format) throw new UsageError(`cannot tell the format of ${files[0]} from its name: give --format ${FORMATS.join('|')}`);
  const fileFields = format === 'idx' ? ['images', 'labels'] : ['file'];
  if (FORMATS.includes(format) && files.length !== fileFields.length) {
    throw new UsageError(format === 'idx' ? 'format idx takes two files: <images> <labels>' : `format ${format} takes one file`);
  }

  const form = new FormData();
  form.append('name', name);
  form.append('format', format);
  for (const [k, v] of extraFields(ctx.options.field)) form.append(k, v);
  for (const [i, path] of files.entries()) form.append(fileFields[i] ?? `file${i}`, await fileBlob(path), basename(path));

  // fetch sets the multipart boundary itself
  const created = await ctx.client.parse<any>(
    'POST',
    '/v1/datasets',
    await ctx.client.fetch('/v1/datasets', { method: 'POST', body: form, headers: { accept: 'application/json' } }),
  );
  ctx.stdout.write(`${created.id}\n`);
  if (!ctx.options.wait) return 0;
  const ds = await waitReady(ctx, created.id);
  if (ds.status === 'ready') {
    ctx.stderr.write(`ready: ${ds.numExamples} examples, ${ds.numClasses} classes, featureShape [${(ds.featureShape ?? []).join(', ')}]\n`);
    return 0;
  }
  const loc = ds.error?.location
    ? ` (${Object.entries(ds.error.location)
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', ')})`
    : '';
  ctx.stderr.write(`failed: ${ds.error?.code ?? 'error'}: ${ds.error?.message ?? 'no message'}${loc}\n`);
  return 1;
};

export const datasetsList: Command = async (ctx) => {
  const limit = limitOption(ctx.options.limit);
  const page = await ctx.client.json('GET', `/v1/datasets${limit ? `?limit=${limit}` : ''}`);
  if (ctx.options.json) {
    ctx.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return 0;
  }
  const rows = page.data.map((d: any) => [
    d.id,
    d.name,
    d.status,
    d.numExamples === null ? '-' : String(d.numExamples),
    d.numClasses === null ? '-' : String(d.numClasses),
    d.featureShape ? `[${d.featureShape.join(', ')}]` : '-',
    d.createdAt,
  ]);
  ctx.stdout.write(`${table(['ID', 'NAME', 'STATUS', 'EXAMPLES', 'CLASSES', 'SHAPE', 'CREATED'], rows)}\n`);
  return 0;
};
