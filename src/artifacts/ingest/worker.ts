/**
 * The worker thread that converts one dataset: it parses, decodes and writes on its own event
 * loop, so the API's stays free for requests however large the upload.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ingestCsv } from './csv.js';
import { derive } from './derive.js';
import { ingestIdx } from './idx.js';
import { ingestImages } from './images.js';
import { IngestError } from './ingest-error.js';
import type { IngestJob, IngestOutcome, IngestResult } from './job.js';
import { ingestJsonl } from './jsonl.js';

async function run(job: IngestJob): Promise<IngestResult> {
  switch (job.kind) {
    case 'csv':
      return ingestCsv(job);
    case 'jsonl':
      return ingestJsonl(job);
    case 'idx':
      return ingestIdx(job);
    case 'images':
      return ingestImages(job);
    case 'derive':
      return derive(job);
  }
}

let outcome: IngestOutcome;
try {
  outcome = { ok: true, result: await run(workerData as IngestJob) };
} catch (err) {
  outcome =
    err instanceof IngestError
      ? { ok: false, error: err.toJSON() }
      : { ok: false, internal: true, error: { code: 'internal', message: (err as Error)?.stack ?? String(err) } };
}
parentPort!.postMessage(outcome);
