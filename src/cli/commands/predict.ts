import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { openAsBlob } from 'node:fs';
import { PREDICTION_FORMATS } from '../../jobs/predictions-file.js';
import { arg, type Command, type Context } from '../context.js';
import { followJob, progressStyle } from '../follow.js';
import { writeAtomic } from './models.js';
import { table } from '../format.js';
import { UsageError } from '../usage-error.js';

interface Predictions {
  predictions: Array<{ classes: Array<{ class: string; probability: number }> }>;
}

/** --top-k: a positive integer, or undefined for every class. */
function topK(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const k = Number(raw);
  if (!Number.isInteger(k) || k < 1) throw new UsageError(`--top-k ${JSON.stringify(raw)} is not valid: expected an integer >= 1`);
  return k;
}

/** The examples of a JSON file: an array of examples, or an object with `examples`. */
async function examplesOf(path: string): Promise<unknown[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read ${path} as JSON: ${(err as Error).message}`);
  }
  const examples: unknown = Array.isArray(parsed) ? parsed : (parsed as { examples?: unknown } | null)?.examples;
  if (!Array.isArray(examples)) throw new UsageError(`${path} holds no examples: expected a JSON array of examples, or {"examples": [...]}`);
  return examples as unknown[];
}

/**
 * predict <model id> (--image <file>... | --json <examples.json>) [--top-k <k>]: one line per
 * example and class, most probable first. With --dataset <id>: a predict job over every example
 * of a stored dataset, followed to its end, its file written to --out (or stdout).
 */
export const predict: Command = async (ctx) => {
  const id = arg(ctx, 0, '<model id>');
  const images = ctx.options.image ?? [];
  const k = topK(ctx.options['top-k']);
  if (ctx.options.dataset !== undefined) {
    if (images.length > 0 || ctx.options.json) throw new UsageError('give --dataset <id>, or --image files, or --json <examples.json>: one of them');
    return predictDataset(ctx, id, ctx.options.dataset, k);
  }
  if (ctx.options.format !== undefined || ctx.options.out !== undefined) throw new UsageError('--format and --out go with --dataset <id>');
  const path = `/v1/models/${encodeURIComponent(id)}/predict`;
  let names: string[];
  let answer: Predictions;
  if (ctx.options.json) {
    if (images.length > 0) throw new UsageError('give --image files or --json <examples.json>, not both');
    const file = arg(ctx, 1, '<examples.json> after --json');
    const examples = await examplesOf(file);
    names = examples.map((_, i) => `${basename(file)}[${i}]`);
    answer = await ctx.client.json<Predictions>('POST', path, { examples, ...(k !== undefined ? { topK: k } : {}) });
  } else {
    if (images.length === 0) throw new UsageError('missing --image <file> (repeat it for several) or --json <examples.json>');
    if (ctx.args.length > 1) throw new UsageError(`unexpected ${JSON.stringify(ctx.args[1])}: images are given with --image <file>`);
    const form = new FormData();
    if (k !== undefined) form.append('topK', String(k));
    for (const file of images) {
      const blob = await openAsBlob(file).catch((err: NodeJS.ErrnoException) => {
        throw new UsageError(`cannot read ${file}: ${err.code ?? err.message}`);
      });
      form.append('image', blob, basename(file));
    }
    names = images.map((f) => basename(f));
    answer = await ctx.client.parse<Predictions>(
      'POST',
      path,
      await ctx.client.fetch(path, { method: 'POST', body: form, headers: { accept: 'application/json' } }),
    );
  }
  const rows = answer.predictions.flatMap((p, i) => p.classes.map((c, rank) => [rank === 0 ? (names[i] ?? String(i)) : '', c.class, c.probability.toFixed(4)]));
  ctx.stdout.write(`${table(['EXAMPLE', 'CLASS', 'PROBABILITY'], rows)}\n`);
  return 0;
};

/** A predict job over a stored dataset: its id on stderr, its progress followed, then its file to --out or stdout. */
async function predictDataset(ctx: Context, model: string, dataset: string, k: number | undefined): Promise<number> {
  const format = ctx.options.format ?? 'jsonl';
  if (!(PREDICTION_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--format ${JSON.stringify(format)} is not valid: expected ${PREDICTION_FORMATS.join(' or ')}`);
  const spec = { type: 'predict', model: { base: model }, data: { input: dataset }, output: { format, ...(k !== undefined ? { topK: k } : {}) } };
  const job = await ctx.client.json<{ id: string }>('POST', '/v1/jobs', spec);
  ctx.stderr.write(`job ${job.id}\n`);
  await followJob(ctx.client, job.id, { style: progressStyle(ctx.options.progress, ctx.stderr), stream: ctx.stderr });
  const end = await ctx.client.json('GET', `/v1/jobs/${encodeURIComponent(job.id)}`);
  if (end.status !== 'succeeded') {
    const e = end.error ?? {};
    ctx.stderr.write(`${end.status}${e.code ? `  ${e.code}: ${e.message}${e.param ? ` (at ${e.param})` : ''}` : ''}\n`);
    return 1;
  }
  const path = `/v1/jobs/${encodeURIComponent(job.id)}/predictions`;
  const res = await ctx.client.fetch(path);
  if (!res.ok) await ctx.client.parse('GET', path, res);
  const text = await res.text();
  if (ctx.options.out === undefined) ctx.stdout.write(text);
  else {
    await writeAtomic(ctx.options.out, text);
    ctx.stderr.write(`wrote ${ctx.options.out} (${end.result.predictions.rows} rows, ${Buffer.byteLength(text)} bytes)\n`);
  }
  return 0;
}
