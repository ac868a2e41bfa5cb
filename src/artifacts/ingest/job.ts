/**
 * What the API hands a conversion worker, and what it gets back. Plain data only: it crosses
 * the worker_threads boundary by structured clone.
 */
import type { DatasetError } from '../../schemas/dataset-error.js';
import type { Transform } from '../../schemas/dataset-transform.js';
import type { OutputLimit } from './output-limit.js';

export interface Preprocessing {
  scale: number;
  offset: number;
}

interface Common {
  /** where features.bin and labels.bin go (a temp dir that Artifacts.writeDir renames into place) */
  outDir: string;
  /** overrides the format's default preprocessing */
  preprocessing?: Preprocessing;
  /** how large the output may grow */
  limit: OutputLimit;
}

export interface CsvJob extends Common {
  kind: 'csv';
  file: string;
  labelColumn: string;
  classes?: string[];
  imageShape?: number[];
}

export interface JsonlJob extends Common {
  kind: 'jsonl';
  file: string;
  classes?: string[];
  imageShape?: number[];
}

export interface IdxJob extends Common {
  kind: 'idx';
  images: string;
  labels: string;
  layout: 'flat' | 'image';
}

export interface ImagesJob extends Common {
  kind: 'images';
  file: string;
  imageSize?: [number, number];
  channels?: 1 | 3;
  layout: 'flat' | 'image';
}

/** A ready dataset to derive from, resolved by the API (the worker never opens the store). */
export interface SourceDataset {
  id: string;
  dir: string;
  numExamples: number;
  featureShape: number[];
  featureDtype: 'uint8' | 'float32';
  classes: string[];
  /** [h, w, c] when image operations apply (already resolved, including the square fallback) */
  imageShape: number[] | null;
  /** the imageShape recorded for the source, carried over as is */
  recordedImageShape: number[] | null;
  preprocessing: Preprocessing;
}

export interface DeriveJob extends Common {
  kind: 'derive';
  source: SourceDataset;
  transform: Transform;
}

export type IngestJob = CsvJob | JsonlJob | IdxJob | ImagesJob | DeriveJob;

/** A job before it is given its output directory and its limit. */
export type IngestRequest = IngestJob extends infer J ? (J extends IngestJob ? Omit<J, 'outDir' | 'limit'> : never) : never;

/** What a ready dataset is, as written by a conversion. */
export interface IngestResult {
  numExamples: number;
  featureShape: number[];
  featureDtype: 'uint8' | 'float32';
  imageShape: number[] | null;
  classes: string[];
  classCounts: number[];
  preprocessing: Preprocessing;
}

export type IngestOutcome = { ok: true; result: IngestResult } | { ok: false; error: DatasetError; internal?: boolean };
