/**
 * The training child's entry: the worker host forks this module (workers/host/training-child.ts)
 * so that the CPU-bound training loop never blocks the host's event loop, and so that the host
 * can kill an attempt that will not stop or grows past its memory cap without harming anything
 * else. It speaks the protocol of src/jobs/child-protocol.ts: `ready` once loaded, then for each
 * `run` the training messages and one `result` or `error`; a `stop` aborts the running attempt.
 */
import type { ChildError, ChildToHost, HostToChild } from '../../src/jobs/child-protocol.js';
import type { TrainingTask } from '../../src/jobs/task.js';
import { runTraining } from './training-loop.js';

if (!process.send) throw new Error('the training child must be started by the worker host (with an IPC channel)');

const send = (m: ChildToHost) =>
  new Promise<void>((ok, fail) => {
    process.send!(m, undefined, {}, (err: Error | null) => (err ? fail(err) : ok()));
  });

/** The thrown value's own fields that say what went wrong (TrainingError's code and param, a wasm RuntimeError's name). */
function toChildError(err: unknown): ChildError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const { code, param } = err as Error & { code?: unknown; param?: unknown };
  return {
    name: err.name,
    message: err.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof param === 'string' ? { param } : {}),
    ...(err.stack ? { stack: err.stack } : {}),
  };
}

let running: AbortController | undefined;

async function run(task: TrainingTask): Promise<void> {
  const controller = (running = new AbortController());
  try {
    const result = await runTraining(task, (message) => send({ type: 'message', message }), controller.signal);
    await send({ type: 'result', result });
  } catch (err) {
    await send({ type: 'error', error: toChildError(err) });
  } finally {
    if (running === controller) running = undefined;
  }
}

process.on('message', (m: HostToChild) => {
  if (m.type === 'run') void run(m.task);
  else running?.abort(m.reason);
});
// the host is gone (killed, or it closed the channel): nothing would read our results
process.on('disconnect', () => process.exit(0));
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (err: unknown) => {
    // the process is in an unknown state: report and end it; the host never reuses a child after an error
    void send({ type: 'error', error: toChildError(err) }).finally(() => process.exit(1));
  });
}
void send({ type: 'ready' });
