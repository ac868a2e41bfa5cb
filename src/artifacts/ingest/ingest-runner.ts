/**
 * Runs dataset conversions in worker threads, a few at a time, from the API process.
 * A fresh thread per conversion: its memory goes back when it ends, and a bug in one
 * conversion cannot leave state behind for the next.
 */
import { Worker } from 'node:worker_threads';
import { IngestError } from './ingest-error.js';
import type { IngestJob, IngestResult } from './job.js';

const WORKER_URL = new URL('./worker.js', import.meta.url);

export class IngestRunner {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly workers = new Set<Worker>();
  private closed = false;

  /**
   * `maxHeapMb` caps each thread's V8 heap (worker_threads resourceLimits): a conversion that
   * crosses it ends as `resource_exhausted`, and the API process goes on.
   */
  constructor(private readonly o: { concurrency: number; maxHeapMb: number }) {}

  /** Converts; rejects with IngestError for bad input, with Error for anything else. */
  async run(job: IngestJob): Promise<IngestResult> {
    if (this.running >= this.o.concurrency) await new Promise<void>((go) => this.waiting.push(go));
    this.running++;
    try {
      if (this.closed) throw new IngestError('interrupted', 'the service stopped before this dataset was converted; upload it again');
      // sharp must be loaded by the main thread before any worker loads it (glibc: its shared
      // libraries have to outlive the worker threads); imported here, not at start, because
      // loading it costs every process about 0.2 s of CPU, most never convert a dataset
      await import('sharp');
      return await this.inWorker(job);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private inWorker(job: IngestJob): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(WORKER_URL, {
        workerData: job,
        resourceLimits: { maxOldGenerationSizeMb: this.o.maxHeapMb, maxYoungGenerationSizeMb: Math.min(64, this.o.maxHeapMb / 4), stackSizeMb: 4 },
      });
      this.workers.add(worker);
      let settled = false;
      worker.once('message', (outcome: import('./job.js').IngestOutcome) => {
        settled = true;
        if (outcome.ok) resolve(outcome.result);
        else if (outcome.internal) reject(new Error(`converting the dataset failed: ${outcome.error.message}`));
        else reject(new IngestError(outcome.error.code, outcome.error.message, outcome.error.location));
      });
      worker.once('error', (err) => {
        settled = true;
        if ((err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY') {
          reject(
            new IngestError(
              'resource_exhausted',
              `converting needed more than the ${this.o.maxHeapMb} MiB of memory a conversion may use (INGEST_MAX_HEAP_MB); the upload is too complex to convert here`,
            ),
          );
        } else {
          reject(err);
        }
      });
      worker.once('exit', (code) => {
        this.workers.delete(worker);
        if (settled) return;
        if (this.closed) reject(new IngestError('interrupted', 'the service stopped while this dataset was being converted; upload it again'));
        else reject(new Error(`the conversion worker exited with code ${code} before it answered`));
      });
    });
  }

  /** Stops running conversions (they fail as interrupted) and refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    for (const go of this.waiting.splice(0)) go();
    await Promise.all([...this.workers].map((w) => w.terminate()));
  }
}
