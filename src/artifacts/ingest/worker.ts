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

/** One converter per kind of job (the upload formats of formats.ts, and derive): a kind without one fails the build. */
const CONVERTERS: { [K in IngestJob['kind']]: (job: Extract<IngestJob, { kind: K }>) => IngestResult | Promise<IngestResult> } = {
  csv: ingestCsv,
  jsonl: ingestJsonl,
  idx: ingestIdx,
  images: ingestImages,
  derive,
};

const run = (job: IngestJob) => (CONVERTERS[job.kind] as (j: IngestJob) => IngestResult | Promise<IngestResult>)(job);

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
