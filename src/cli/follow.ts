import cliProgress from 'cli-progress';
import type { ApiClient } from './api-client.js';
import { jobEvents, type StreamEvent } from './event-stream.js';
import { metricList, num } from './format.js';
import { UsageError } from './usage-error.js';

export type ProgressStyle = 'bars' | 'lines' | 'none';

/** What a follower shows for each event; bars need a terminal, lines suit logs and pipes. */
interface Renderer {
  event(ev: StreamEvent): void;
  stop(): void;
}

function lineRenderer(write: (line: string) => void): Renderer {
  return {
    event(ev) {
      const d = ev.data;
      if (ev.type === 'status') {
        const extra = d.attempt ? ` (attempt ${d.attempt})` : d.retry ? ` (retrying after attempt ${d.retry.afterAttempt}: ${d.error?.code ?? 'error'})` : '';
        write(`status ${d.status}${extra}`);
      } else if (ev.type === 'metrics') {
        write(`epoch ${d.epoch}  ${metricList(d, ['epoch'])}`);
      } else if (ev.type === 'checkpoint') {
        write(`checkpoint at epoch ${d.epoch}${d.step !== undefined ? ` step ${d.step}` : ''}`);
      } else if (ev.type === 'log') {
        write(`${d.level ?? 'info'}: ${d.message}`);
      }
      // progress events are many per epoch: lines show the epoch summaries only
    },
    stop() {},
  };
}

/** One cli-progress bar per epoch: steps done, the running loss, then the epoch's metrics when it ends. */
function barRenderer(stream: NodeJS.WritableStream, forceOutput: boolean): Renderer {
  const multibar = new cliProgress.MultiBar(
    {
      stream,
      format: 'epoch {epoch} [{bar}] {percentage}% | step {value}/{total} | {figures}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 30,
      // when not on a terminal (tests, CI logs) still draw, a few times a second at most
      noTTYOutput: forceOutput,
      notTTYSchedule: 250,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<number, cliProgress.SingleBar>();
  const bar = (epoch: number, epochs: number, steps: number) => {
    let b = bars.get(epoch);
    if (!b) {
      b = multibar.create(steps, 0, { epoch: `${epoch}/${epochs}`, figures: '' });
      bars.set(epoch, b);
    }
    return b;
  };
  const lines = lineRenderer((line) => multibar.log(`${line}\n`));
  return {
    event(ev) {
      const d = ev.data;
      if (ev.type === 'progress') {
        bar(d.epoch, d.epochs, d.steps).update(d.step, { figures: typeof d.loss === 'number' ? `loss ${num(d.loss)}` : '' });
      } else if (ev.type === 'metrics') {
        const b = bars.get(d.epoch);
        if (b) b.update(b.getTotal(), { figures: metricList(d, ['epoch', 'epochSeconds']) });
        else lines.event(ev);
      } else if (ev.type === 'status' && d.status === 'running' && bars.size > 0) {
        // a retried attempt starts again from its checkpoint: fresh bars, not half-full old ones
        for (const b of bars.values()) multibar.remove(b);
        bars.clear();
        lines.event(ev);
      } else if (ev.type !== 'checkpoint') {
        lines.event(ev);
      }
    },
    stop() {
      multibar.stop();
    },
  };
}

/** Follows a job until it ends and returns the terminal status event. Progress goes to `stream` (stderr). */
export async function followJob(
  client: ApiClient,
  jobId: string,
  opts: { style: ProgressStyle; stream: NodeJS.WritableStream & { isTTY?: boolean } },
): Promise<StreamEvent> {
  const renderer =
    opts.style === 'none'
      ? { event() {}, stop() {} }
      : opts.style === 'bars'
        ? barRenderer(opts.stream, true)
        : lineRenderer((l) => opts.stream.write(`${l}\n`));
  let last: StreamEvent | undefined;
  try {
    for await (const ev of jobEvents(client, jobId)) {
      renderer.event(ev);
      last = ev;
    }
  } finally {
    renderer.stop();
  }
  if (!last) throw new Error(`the event stream of job ${jobId} ended with no events`);
  return last;
}

/** `auto`: bars on a terminal, lines otherwise. */
export function progressStyle(requested: string | undefined, stream: { isTTY?: boolean }): ProgressStyle {
  const style = requested ?? 'auto';
  if (style === 'auto') return stream.isTTY ? 'bars' : 'lines';
  if (style === 'bars' || style === 'lines' || style === 'none') return style;
  throw new UsageError(`--progress ${JSON.stringify(style)} is not valid: expected auto, bars, lines or none`);
}
