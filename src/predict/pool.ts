/**
 * The API's pool of warm prediction children (workers/predict/child.ts, forked by path: the API
 * never loads TensorFlow.js). Each model goes to one child by a hash of its id, so a model is
 * loaded once and stays in that child's cache. Bounded before anything is sent: a request takes a
 * place among the predictions in flight per tenant and in the whole pool (reserve) before it reads
 * its body, and holds it until it ends; each prediction's time is bounded too. A child that crashes
 * or runs out of time fails what it held and is replaced at once.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { PredictConfig } from '../config.js';
import type { ChildReady, PredictAnswer, PredictRequest } from './protocol.js';

const CHILD = new URL('../../workers/predict/child.js', import.meta.url);

/** Why a prediction was not answered; the HTTP layer maps each to its status. */
export type Unavailable = 'tenant_busy' | 'pool_busy' | 'child_crashed' | 'timeout' | 'place_released';

export class PredictUnavailable extends Error {
  constructor(
    readonly reason: Unavailable,
    message: string,
  ) {
    super(message);
  }
}

/** The stored model cannot be loaded, or does not take the shape its record says. */
export class PredictModelError extends Error {}

export interface Prediction {
  /** one row of `numClasses` probabilities per example */
  probabilities: Float32Array;
  numClasses: number;
}

/**
 * One place among the predictions in flight (PredictPool.reserve): taken before a request reads its
 * body, so the bounds also cover requests still uploading, and held until the request ends.
 */
export interface PredictPlace {
  /** Sends the examples to the child of their model; refused once the place is released. */
  predict(req: Omit<PredictRequest, 'id'>): Promise<Prediction>;
  /**
   * Gives the place back: at once, or, while a prediction sent on it is in its child, when that
   * settles (the child still works on it). Later calls do nothing.
   */
  release(): void;
}

interface Pending {
  resolve(p: Prediction): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/** How long a new child may take to load TensorFlow.js and its backend before it is given up. */
const START_TIMEOUT_MS = 120_000;

export type PoolOptions = Pick<PredictConfig, 'children' | 'maxHeapMb' | 'cacheModels' | 'cacheBytes' | 'tenantConcurrency' | 'queueMax' | 'timeoutMs'>;

/** One child process and the requests it holds; `onGone` runs once, when it exits or is given up. */
class ChildWorker {
  readonly process: ChildProcess;
  readonly pending = new Map<number, Pending>();
  /** resolves when the child's backend is up; a request's time starts then, not while tfjs loads */
  private readonly ready: Promise<void>;
  wasReady = false;
  gone = false;

  constructor(
    private readonly o: PoolOptions,
    private readonly onGone: (w: ChildWorker) => void,
  ) {
    // Only what the child needs: no API keys, database URL or other secrets of the API's environment.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      TF_CPP_MIN_LOG_LEVEL: '2',
      TRAINING_THREADS: '1',
      PREDICT_CACHE_MODELS: String(o.cacheModels),
      PREDICT_CACHE_BYTES: String(o.cacheBytes),
      ...(process.env.TFJS_BACKEND ? { TFJS_BACKEND: process.env.TFJS_BACKEND } : {}),
    };
    this.process = fork(CHILD, [], {
      serialization: 'advanced',
      execArgv: [`--max-old-space-size=${o.maxHeapMb}`],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env,
    });
    let markReady = () => {};
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.process.on('message', (m: PredictAnswer | ChildReady) => {
      if ('ready' in m) {
        this.wasReady = true;
        markReady();
        return;
      }
      this.settle(m.id, m.ok ? { probabilities: m.probabilities, numClasses: m.numClasses } : new PredictModelError(m.message));
    });
    this.process.once('exit', (code, signal) =>
      this.end(`the prediction child exited (${signal ?? `code ${code}`}) while answering; it is being replaced, try again`),
    );
    // an IPC error on a dying child surfaces as 'exit' too
    this.process.on('error', () => undefined);
  }

  send(req: PredictRequest): Promise<Prediction> {
    return new Promise<Prediction>((resolve, reject) => {
      const pending: Pending = { resolve, reject, timer: undefined };
      this.pending.set(req.id, pending);
      pending.timer = this.timeOut(req.id, START_TIMEOUT_MS, `the prediction child did not start within ${START_TIMEOUT_MS} ms`);
      void this.ready.then(() => {
        if (!this.pending.has(req.id)) return;
        clearTimeout(pending.timer);
        pending.timer = this.timeOut(req.id, this.o.timeoutMs, `the prediction took longer than ${this.o.timeoutMs} ms (PREDICT_TIMEOUT_MS)`);
      });
      this.process.send(req, (err) => {
        if (err) this.settle(req.id, new PredictUnavailable('child_crashed', `the prediction child could not be reached (${err.message}); try again`));
      });
    });
  }

  kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    this.process.kill('SIGKILL');
    return exited;
  }

  private timeOut(id: number, ms: number, what: string): NodeJS.Timeout {
    return setTimeout(() => {
      this.settle(id, new PredictUnavailable('timeout', `${what}; its child was replaced, try again`));
      // a child past its time may be stuck in a kernel: only a new one is sure to answer
      this.end('the prediction child was replaced after another request ran out of time; try again');
      void this.kill();
    }, ms);
  }

  /** Fails what it still holds and hands the slot back, once. */
  private end(reason: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, new PredictUnavailable('child_crashed', reason));
    if (this.gone) return;
    this.gone = true;
    this.onGone(this);
  }

  private settle(id: number, outcome: Prediction | Error): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }
}

export class PredictPool {
  private readonly slots: Array<ChildWorker | undefined>;
  private readonly perTenant = new Map<string, number>();
  private inFlight = 0;
  private nextId = 1;
  private closed = false;

  constructor(private readonly o: PoolOptions) {
    this.slots = Array.from({ length: o.children }, () => undefined);
  }

  /** A place for one of `tenant`'s predictions, or PredictUnavailable when the bounds are reached. */
  reserve(tenant: string): PredictPlace {
    const held = this.perTenant.get(tenant) ?? 0;
    if (held >= this.o.tenantConcurrency) {
      throw new PredictUnavailable(
        'tenant_busy',
        `tenant ${tenant} has ${held} predictions in flight, the most one tenant may have (PREDICT_TENANT_CONCURRENCY)`,
      );
    }
    if (this.inFlight >= this.o.queueMax) {
      throw new PredictUnavailable('pool_busy', `${this.inFlight} predictions are in flight, the most the service takes at once (PREDICT_QUEUE_MAX)`);
    }
    if (this.closed) throw new PredictUnavailable('pool_busy', 'the service is shutting down');
    this.perTenant.set(tenant, held + 1);
    this.inFlight++;
    let released = false;
    let sending = 0;
    const giveBack = () => {
      this.inFlight--;
      const left = (this.perTenant.get(tenant) ?? 1) - 1;
      if (left === 0) this.perTenant.delete(tenant);
      else this.perTenant.set(tenant, left);
    };
    return {
      predict: async (req) => {
        // its request ended (its client gone) while it read the body or fetched the model: sent now, the
        // prediction would run outside the bounds
        if (released) throw new PredictUnavailable('place_released', 'the request ended before its prediction was sent; it was not run');
        // the place may have been taken before the pool closed; a child started now would outlive it
        if (this.closed) throw new PredictUnavailable('pool_busy', 'the service is shutting down');
        sending++;
        try {
          const slot = slotOf(req.model.id, this.slots.length);
          // children start at the first prediction and stay warm
          const worker = this.slots[slot] ?? this.start(slot);
          return await worker.send({ ...req, id: this.nextId++ });
        } finally {
          sending--;
          if (released && sending === 0) giveBack();
        }
      },
      release: () => {
        if (released) return;
        released = true;
        if (sending === 0) giveBack();
      },
    };
  }

  /** The children's process ids and how many requests each holds. */
  stats(): Array<{ pid: number | undefined; inFlight: number }> {
    return this.slots.map((w) => ({ pid: w?.process.pid, inFlight: w?.pending.size ?? 0 }));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((w) => w?.kill() ?? Promise.resolve()));
  }

  private start(slot: number): ChildWorker {
    const worker = new ChildWorker(this.o, (gone) => {
      if (this.slots[slot] !== gone) return;
      this.slots[slot] = undefined;
      // replaced at once so the pool stays warm; one that never got ready is not restarted in a loop
      if (!this.closed && gone.wasReady) this.start(slot);
    });
    this.slots[slot] = worker;
    return worker;
  }
}

/** FNV-1a of the model id: the same model always goes to the same child (and its cache). */
function slotOf(modelId: string, slots: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < modelId.length; i++) h = Math.imul(h ^ modelId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % slots;
}
