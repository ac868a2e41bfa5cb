/**
 * Runs check-child.js on a stored model directory and waits for its verdict, a few at a time:
 * each child loads TensorFlow.js and the whole model, so the API takes no more at once than
 * MODEL_CHECK_CONCURRENCY and answers 503 beyond (see ModelCheckSlots).
 */
import { fork } from 'node:child_process';
import type { CheckAnswer } from './check-child.js';

const CHILD = new URL('./check-child.js', import.meta.url);
const TIMEOUT_MS = 120_000;

/** `maxHeapMb` caps the child's V8 heap; crossing it ends the check as `resource_exhausted`. */
export function checkModel(dir: string, o: { maxHeapMb: number }): Promise<CheckAnswer> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [dir], {
      execArgv: [`--max-old-space-size=${o.maxHeapMb}`],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
    });
    let stderr = '';
    let answer: CheckAnswer | undefined;
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.once('message', (m) => (answer = m as CheckAnswer));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (answer) resolve(answer);
      else if (/heap out of memory|Allocation failed/i.test(stderr)) {
        resolve({
          ok: false,
          code: 'resource_exhausted',
          message: `loading the model needed more than the ${o.maxHeapMb} MiB a model check may use (INGEST_MAX_HEAP_MB)`,
        });
      } else reject(new Error(`the model check exited (${signal ?? `code ${code}`}) without an answer: ${stderr.trim()}`));
    });
  });
}

/**
 * A fixed number of check slots, taken without waiting: a model upload that finds none free is
 * refused at once (before its body is read) rather than queued behind others' checks.
 */
export class ModelCheckSlots {
  private free: number;

  constructor(readonly size: number) {
    this.free = size;
  }

  /** A release function, or undefined when every slot is taken. */
  take(): (() => void) | undefined {
    if (this.free === 0) return undefined;
    this.free--;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.free++;
    };
  }
}
