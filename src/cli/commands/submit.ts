import { readFile } from 'node:fs/promises';
import { arg, type Command, type Context } from '../context.js';
import { followJob, progressStyle } from '../follow.js';
import { metricList, perClass } from '../format.js';
import { UsageError } from '../usage-error.js';

export async function readSpec(file: string): Promise<unknown> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the spec ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the spec ${file === '-' ? 'on stdin' : file} is not JSON: ${(err as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Follows a job to its end and reports it; exit 0 only when it succeeded. */
export async function reportFollowed(ctx: Context, jobId: string): Promise<number> {
  const end = await followJob(ctx.client, jobId, { style: progressStyle(ctx.options.progress, ctx.stderr), stream: ctx.stderr });
  const job = await ctx.client.json('GET', `/v1/jobs/${encodeURIComponent(jobId)}`);
  if (ctx.options.json) {
    ctx.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
  } else if (job.status === 'succeeded') {
    const classes = perClass(job.result.metrics);
    ctx.stdout.write(`succeeded  model ${job.result.modelId}\n${metricList(job.result.metrics)}\n${classes ? `${classes}\n` : ''}`);
  } else if (job.status === 'failed') {
    const e = job.error ?? end.data.error ?? {};
    ctx.stdout.write(`failed  ${e.code ?? 'error'}: ${e.message ?? 'no message'}${e.param ? ` (at ${e.param})` : ''}\n`);
  } else {
    ctx.stdout.write(`${job.status}${end.data.reason ? `: ${end.data.reason}` : ''}\n`);
  }
  return job.status === 'succeeded' ? 0 : 1;
}

/** submit <spec.json|-> [--follow]: prints the job id first, so `JOB=$(tfjs-adapt submit spec.json)` works. */
export const submit: Command = async (ctx) => {
  const spec = await readSpec(arg(ctx, 0, '<spec.json> (a file, or - for stdin)'));
  const key = ctx.options['idempotency-key'];
  const job = await ctx.client.json('POST', '/v1/jobs', spec, key ? { 'idempotency-key': key } : {});
  ctx.stdout.write(`${job.id}\n`);
  if (!ctx.options.follow) return 0;
  return reportFollowed(ctx, job.id);
};
