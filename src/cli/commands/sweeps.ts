import { arg, type Command, type Context } from '../context.js';
import { num, table } from '../format.js';
import { limitOption } from './jobs.js';
import { readSpec } from './submit.js';

/** How often `sweep create --wait` and `sweep get --wait` look at the sweep: trials take minutes, not milliseconds. */
const POLL_MS = 2000;

const value = (v: unknown) => (typeof v === 'number' ? num(v) : JSON.stringify(v));

/** The trials table, then the best trial and why, and what each validator without target labels would pick. */
function describe(s: any): string {
  const pointers = Object.keys(s.spec.parameters).sort();
  const rows = s.trials.map((t: any) => [
    String(t.index),
    t.jobId ?? '-',
    t.status + (t.stopped ? ' (stopped early)' : ''),
    ...pointers.map((p) => value(t.parameters[p])),
    t.objective ? num(t.objective.value) : t.latest ? `(${num(t.latest.value)} at epoch ${t.latest.epoch})` : '-',
  ]);
  const head = table(['#', 'JOB', 'STATUS', ...pointers, s.spec.objective.metric.toUpperCase()], rows);
  const best = s.best ? `best: trial ${s.best.index} (${s.best.jobId}): ${s.best.reason}` : 'best: none yet';
  const picks =
    s.validatorPicks.length === 0
      ? ''
      : `validators without target labels pick: ${s.validatorPicks.map((p: any) => `${p.validator} -> trial ${p.index}${p.index === s.best?.index ? ' (the best)' : ''}`).join(', ')}\n`;
  return `${s.id}  ${s.status}  ${s.spec.algorithm}, ${s.trials.length} trials, ${s.goal} ${s.spec.objective.metric}\n${head}\n${best}\n${picks}`;
}

async function print(ctx: Context, s: any): Promise<number> {
  ctx.stdout.write(ctx.options.json ? `${JSON.stringify(s, null, 2)}\n` : describe(s));
  return s.status === 'running' || s.status === 'succeeded' ? 0 : 1;
}

async function waitForEnd(ctx: Context, id: string): Promise<any> {
  for (;;) {
    const s = await ctx.client.json('GET', `/v1/sweeps/${encodeURIComponent(id)}`);
    if (s.status !== 'running') return s;
    const done = s.trials.filter((t: any) => ['succeeded', 'failed', 'cancelled'].includes(t.status)).length;
    ctx.stderr.write(`${id}: ${done}/${s.trials.length} trials ended${s.best ? `, best ${num(s.best.objective.value)} (trial ${s.best.index})` : ''}\n`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** sweep create <spec.json|-> [--wait]: prints the sweep id first, so `SWEEP=$(tfjs-adapt sweep create s.json)` works. */
export const sweepCreate: Command = async (ctx) => {
  const spec = await readSpec(arg(ctx, 0, '<sweep.json> (a file, or - for stdin)'));
  const s = await ctx.client.json('POST', '/v1/sweeps', spec);
  ctx.stdout.write(`${s.id}\n`);
  if (!ctx.options.wait) return 0;
  const end = await waitForEnd(ctx, s.id);
  await print(ctx, end);
  return end.status === 'succeeded' ? 0 : 1;
};

export const sweepGet: Command = async (ctx) => {
  const id = arg(ctx, 0, '<sweep id>');
  const s = ctx.options.wait ? await waitForEnd(ctx, id) : await ctx.client.json('GET', `/v1/sweeps/${encodeURIComponent(id)}`);
  return print(ctx, s);
};

export const sweepList: Command = async (ctx) => {
  const q = new URLSearchParams();
  const limit = limitOption(ctx.options.limit);
  if (limit) q.set('limit', String(Math.min(limit, 50)));
  if (ctx.options.status) q.set('status', ctx.options.status);
  const page = await ctx.client.json('GET', `/v1/sweeps${q.size ? `?${q}` : ''}`);
  if (ctx.options.json) {
    ctx.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return 0;
  }
  const rows = page.data.map((s: any) => [
    s.id,
    s.status,
    `${s.trials.filter((t: any) => t.status === 'succeeded').length}/${s.trials.length}`,
    s.spec.objective.metric,
    s.best ? num(s.best.objective.value) : '-',
    s.createdAt,
  ]);
  ctx.stdout.write(`${table(['ID', 'STATUS', 'DONE', 'OBJECTIVE', 'BEST', 'CREATED'], rows)}\n`);
  if (page.hasMore) ctx.stderr.write(`(more: the API's ?after=${page.nextCursor})\n`);
  return 0;
};

export const sweepCancel: Command = async (ctx) => {
  const s = await ctx.client.json('POST', `/v1/sweeps/${encodeURIComponent(arg(ctx, 0, '<sweep id>'))}/cancel`);
  const live = s.trials.filter((t: any) => t.status === 'running').length;
  ctx.stdout.write(`${s.id} cancelled${live > 0 ? ` (${live} running trials stop within one batch)` : ''}\n`);
  return 0;
};
