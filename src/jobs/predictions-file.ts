/**
 * What a prediction answers and how a predict job writes it, shared by the predict route (one
 * request's answer), the training child (a predict job's file), the admission estimate (the most
 * bytes that file can take) and the download route (its name and media type). Pure: no tfjs, no I/O.
 *
 * Every row is one example in the dataset's stored order, with its classes by falling probability,
 * as `POST /v1/models/{id}/predict` answers each: JSONL `{"index": i, "classes": [{"class",
 * "probability"}, ...]}` per line, or CSV `index,class_1,probability_1,...,class_k,probability_k`
 * with a header line (RFC 4180 quoting).
 */

export const PREDICTION_FORMATS = ['jsonl', 'csv'] as const;
export type PredictionFormat = (typeof PREDICTION_FORMATS)[number];

/** A predictions file is never larger than this: admission refuses a job whose bound exceeds it, and the child stops writing past it. */
export const PREDICTIONS_MAX_BYTES = 1024 ** 3;

/** The file a predict job writes in its predictions directory. */
export const predictionsFileName = (format: PredictionFormat) => `predictions.${format}`;

export const PREDICTIONS_MEDIA_TYPES: Record<PredictionFormat, string> = { jsonl: 'application/x-ndjson', csv: 'text/csv; charset=utf-8' };

export interface ClassProbability {
  class: string;
  probability: number;
}

/**
 * One example's classes by falling probability (ties by class index), the first `topK`;
 * `row` holds its probability for every class, `classes` their names (else the index as text).
 */
export function rankClasses(row: ArrayLike<number>, classes: readonly string[] | null, topK = row.length): ClassProbability[] {
  const order = Array.from({ length: row.length }, (_, c) => c).sort((a, b) => row[b] - row[a] || a - b);
  return order.slice(0, topK).map((c) => ({ class: classes?.[c] ?? String(c), probability: row[c] }));
}

/** The CSV header for `topK` classes a row (ends with a newline); JSONL has none. */
export function predictionsHeader(format: PredictionFormat, topK: number): string {
  if (format === 'jsonl') return '';
  const columns = ['index'];
  for (let k = 1; k <= topK; k++) columns.push(`class_${k}`, `probability_${k}`);
  return `${columns.join(',')}\n`;
}

/** Example `index`'s line (ending with a newline). */
export function predictionLine(format: PredictionFormat, index: number, ranked: readonly ClassProbability[]): string {
  if (format === 'jsonl') return `${JSON.stringify({ index, classes: ranked })}\n`;
  return `${[String(index), ...ranked.flatMap((c) => [csvField(c.class), String(c.probability)])].join(',')}\n`;
}

/**
 * RFC 4180: a field holding a comma, quote or line break is quoted, its quotes doubled. Class
 * names come from uploaded labels, and a spreadsheet runs a cell that starts with = + - @ or a
 * tab/CR as a formula (CSV injection, OWASP): such a name gets a leading apostrophe, which
 * spreadsheets show as text.
 */
function csvField(text: string): string {
  const inert = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(inert) ? `"${inert.replace(/"/g, '""')}"` : inert;
}

/** The longest text String() gives a float32 probability in [0, 1] (e.g. 0.0000012345678901234567). */
const NUMBER_CHARS = 24;

/**
 * The most bytes the predictions file of `rows` examples can take, `topK` classes a row named from
 * `classes` (every row taken as listing the longest names): what admission holds against
 * PREDICTIONS_MAX_BYTES and the tenant's storage quota.
 */
export function predictionsBytesBound(o: { format: PredictionFormat; rows: number; topK: number; classes: readonly string[] }): number {
  const utf8 = (s: string) => new TextEncoder().encode(s).length;
  const names = o.classes
    .map((c) => (o.format === 'jsonl' ? utf8(JSON.stringify(c)) : utf8(csvField(c))))
    .sort((a, b) => b - a)
    .slice(0, o.topK);
  const indexChars = String(Math.max(0, o.rows - 1)).length;
  // JSONL: {"index":,"classes":[]}\n around the entries, each {"class":,"probability":}, apart
  // CSV: the index and a newline around the fields, each with its comma
  const perRow =
    o.format === 'jsonl'
      ? 24 + indexChars + names.reduce((n, name) => n + 26 + name + NUMBER_CHARS, 0)
      : 1 + indexChars + names.reduce((n, name) => n + 2 + name + NUMBER_CHARS, 0);
  return utf8(predictionsHeader(o.format, o.topK)) + o.rows * perRow;
}
