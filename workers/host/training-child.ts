/**
 * One training child process: workers/training/processor.ts forked with an IPC channel and a
 * V8 heap limit, its stderr passed through (and its tail kept, to tell a heap exhaustion from
 * other deaths), its resident memory read from /proc. What an attempt in it means is decided
 * by attempt-runner.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChildToHost, HostToChild } from '../../src/jobs/child-protocol.js';

const ENTRY = fileURLToPath(new URL('../training/processor.js', import.meta.url));
const MiB = 1024 * 1024;
/** enough of stderr to hold V8's fatal out-of-memory report */
const STDERR_TAIL_CHARS = 8192;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class TrainingChild {
  private readonly proc: ChildProcess;
  private stderrTail = '';
  /** settles when the process has exited and its stderr has been read to the end */
  readonly exited: Promise<Exit>;
  /** settles once the child has loaded and can take a run; rejects if it exits first */
  readonly ready: Promise<void>;
  private exit: Exit | undefined;
  /** it has loaded and can take a run */
  isReady = false;

  /**
   * `threads`: its XNNPACK threads (TRAINING_THREADS). `maxMemoryBytes` is the child's cap: V8's old space may take half of it (the rest is for
   * the wasm memory, where the tensors live, and the process itself); the host enforces the
   * whole cap on the resident size.
   */
  constructor(opts: { maxMemoryBytes: number; threads: number }) {
    const heapMiB = Math.max(64, Math.floor(opts.maxMemoryBytes / 2 / MiB));
    this.proc = fork(ENTRY, [], {
      execArgv: [`--max-old-space-size=${heapMiB}`],
      env: { ...process.env, TRAINING_THREADS: String(opts.threads) },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    this.proc.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_TAIL_CHARS);
    });
    this.proc.once('exit', (code, signal) => (this.exit = { code, signal }));
    // 'close' comes after 'exit' once stdio has ended: V8's last words on stderr are in by then
    this.exited = new Promise((ok) => this.proc.once('close', (code: number | null, signal: NodeJS.Signals | null) => ok({ code, signal })));
    this.ready = new Promise((ok, fail) => {
      const onMessage = (m: ChildToHost) => {
        if (m.type !== 'ready') return;
        this.proc.off('message', onMessage);
        this.isReady = true;
        ok();
      };
      this.proc.on('message', onMessage);
      void this.exited.then((e) => fail(new Error(`the training process exited while it started (exit code ${e.code}, signal ${e.signal})`)));
    });
    // an attempt that never waits for `ready` (stopped first) must not leave it unhandled
    this.ready.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Sends unless the channel is gone (the child died; its exit tells the rest). */
  send(m: HostToChild): void {
    if (this.alive && this.proc.connected) this.proc.send(m, (err) => err && undefined);
  }

  /** Calls `fn` once the child has exited (at once if it has); returns the unsubscribe function. */
  onExit(fn: (e: Exit) => void): () => void {
    let subscribed = true;
    void this.exited.then((e) => subscribed && fn(e));
    return () => {
      subscribed = false;
    };
  }

  /** Returns the unsubscribe function. */
  onMessage(fn: (m: ChildToHost) => void): () => void {
    this.proc.on('message', fn);
    return () => this.proc.off('message', fn);
  }

  /** Resident set size from /proc (Linux); undefined where that cannot be read. */
  rssBytes(): number | undefined {
    if (this.proc.pid === undefined || !this.alive) return undefined;
    try {
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'))?.[1];
      return kb === undefined ? undefined : Number(kb) * 1024;
    } catch {
      return undefined;
    }
  }

  /** V8 ended the process because its heap reached --max-old-space-size. */
  heapExhausted(): boolean {
    return /JavaScript heap out of memory|Reached heap limit/.test(this.stderrTail);
  }

  /** SIGKILL: nothing the child runs (a step that never ends) can delay it. */
  async kill(): Promise<void> {
    if (this.alive) this.proc.kill('SIGKILL');
    await this.exited;
  }
}
