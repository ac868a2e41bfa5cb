import { arg, type Command } from '../context.js';
import { table } from '../format.js';
import { UsageError } from '../usage-error.js';
import { reportFollowed } from './submit.js';

function progressText(job: any): string {
  const p = job.progress;
  if (!p) return '-';
  return `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps}`;
}

export function limitOption(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new UsageError(`--limit ${JSON.stringify(raw)} is not valid: expected an integer from 1 to 200`);
  return n;
}

export const jobsList: Command = async (ctx) => {
  const q = new URLSearchParams();
  const limit = limitOption(ctx.options.limit);
  if (limit) q.set('limit', String(limit));
  if (ctx.options.status) q.set('status', ctx.options.status);
  if (ctx.options.type) q.set('type', ctx.options.type);
  const page = await ctx.client.json('GET', `/v1/jobs${q.size ? `?${q}` : ''}`);
  if (ctx.options.json) {
    ctx.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return 0;
  }
  const rows = page.data.map((j: any) => [j.id, j.status, j.type, progressText(j), j.backend ?? '-', j.createdAt]);
  ctx.stdout.write(`${table(['ID', 'STATUS', 'TYPE', 'PROGRESS', 'BACKEND', 'CREATED'], rows)}\n`);
  if (page.hasMore) ctx.stderr.write(`(more: --limit up to 200, or the API's ?after=${page.nextCursor})\n`);
  return 0;
};

export const jobsGet: Command = async (ctx) => {
  const job = await ctx.client.json('GET', `/v1/jobs/${encodeURIComponent(arg(ctx, 0, '<job id>'))}`);
  ctx.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
  return 0;
};

export const jobsCancel: Command = async (ctx) => {
  const job = await ctx.client.json('POST', `/v1/jobs/${encodeURIComponent(arg(ctx, 0, '<job id>'))}/cancel`);
  ctx.stdout.write(job.status === 'cancelled' ? `${job.id} cancelled\n` : `${job.id} is stopping (it ends within one batch)\n`);
  return 0;
};

export const jobsFollow: Command = async (ctx) => reportFollowed(ctx, arg(ctx, 0, '<job id>'));
