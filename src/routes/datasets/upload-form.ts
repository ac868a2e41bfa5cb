/**
 * The fields of a dataset upload (multipart/form-data), checked like a JSON body: a missing,
 * misspelt, repeated or ill-formed field is a 400 naming it, before anything is converted.
 */
import type { ReceivedUpload } from '../../artifacts/upload-receiver.js';
import type { CsvJob, IdxJob, ImagesJob, JsonlJob, Preprocessing } from '../../artifacts/ingest/job.js';
import { HttpProblem, type FieldError } from '../../plugins/problem.js';

export const FORMATS = ['csv', 'jsonl', 'idx', 'images'] as const;
type Format = (typeof FORMATS)[number];

const FILE_FIELDS: Record<Format, string[]> = { csv: ['file'], jsonl: ['file'], idx: ['images', 'labels'], images: ['file'] };
const OPTION_FIELDS: Record<Format, string[]> = {
  csv: ['labelColumn', 'classes', 'imageShape', 'scale', 'offset'],
  jsonl: ['classes', 'imageShape', 'scale', 'offset'],
  idx: ['layout', 'scale', 'offset'],
  images: ['imageSize', 'channels', 'layout', 'scale', 'offset'],
};
const ALL_OPTIONS = new Set(Object.values(OPTION_FIELDS).flat());
const ALL_FILES = new Set(Object.values(FILE_FIELDS).flat());

export type UploadJob = Omit<CsvJob, 'outDir'> | Omit<JsonlJob, 'outDir'> | Omit<IdxJob, 'outDir'> | Omit<ImagesJob, 'outDir'>;

export interface DatasetUpload {
  name: string;
  job: UploadJob;
  /** what the dataset's `source` shows: the format, the files received, the options */
  source: Record<string, unknown>;
}

/** "[28, 28]", "28,28" or "28x28" */
function integers(text: string): number[] | undefined {
  const t = text.trim();
  let values: unknown;
  if (t.startsWith('[')) {
    try {
      values = JSON.parse(t);
    } catch {
      return undefined;
    }
  } else {
    values = t.split(/\s*[,x×]\s*/).map(Number);
  }
  return Array.isArray(values) && values.every((v) => Number.isInteger(v) && v >= 1 && v <= 65536) ? (values as number[]) : undefined;
}

export function parseUploadForm(upload: ReceivedUpload): DatasetUpload {
  const errors: FieldError[] = [];
  const problem = (field: string, detail: string) => errors.push({ pointer: `/${field}`, in: 'body', detail });
  const one = (field: string): string | undefined => {
    const values = upload.fields.get(field);
    if (!values) return undefined;
    if (values.length > 1) problem(field, `is given ${values.length} times; expected once`);
    return values[0];
  };

  const name = one('name');
  if (name === undefined) problem('name', 'is required');
  else if (name.trim() === '' || name.length > 200) problem('name', 'must be 1 to 200 characters');
  const formatText = one('format');
  const format = FORMATS.find((f) => f === formatText);
  if (formatText === undefined) problem('format', `is required: one of ${FORMATS.join(', ')}`);
  else if (!format) problem('format', `must be one of ${FORMATS.map((f) => JSON.stringify(f)).join(', ')}`);

  for (const field of upload.fields.keys()) {
    if (field === 'name' || field === 'format') continue;
    if (ALL_FILES.has(field)) problem(field, `must be a file upload (curl -F ${field}=@path), not a text field`);
    else if (!ALL_OPTIONS.has(field)) problem(field, 'is not a known field');
    else if (format && !OPTION_FIELDS[format].includes(field)) problem(field, `does not apply to format ${format} (it applies to ${FORMATS.filter((f) => OPTION_FIELDS[f].includes(field)).join(', ')})`);
  }
  const files = new Map<string, string>();
  for (const f of upload.files) {
    if (!ALL_FILES.has(f.field)) problem(f.field, `is not a known file field (files go in ${[...ALL_FILES].join(', ')})`);
    else if (format && !FILE_FIELDS[format].includes(f.field)) problem(f.field, `is not a file of format ${format} (expected ${FILE_FIELDS[format].join(' and ')})`);
    else if (files.has(f.field)) problem(f.field, 'is given more than once; expected one file');
    else files.set(f.field, f.path);
  }
  if (format) {
    for (const field of FILE_FIELDS[format]) {
      if (!files.has(field) && !upload.fields.has(field)) problem(field, `is required for format ${format}: the file to upload (curl -F ${field}=@path)`);
    }
  }

  let preprocessing: Preprocessing | undefined;
  const scaleText = one('scale');
  const offsetText = one('offset');
  if (scaleText !== undefined || offsetText !== undefined) {
    const scale = scaleText === undefined ? 1 : Number(scaleText.trim());
    const offset = offsetText === undefined ? 0 : Number(offsetText.trim());
    if (!Number.isFinite(scale) || scale === 0 || scaleText?.trim() === '') problem('scale', 'must be a finite number other than 0');
    if (!Number.isFinite(offset) || offsetText?.trim() === '') problem('offset', 'must be a finite number');
    preprocessing = { scale, offset };
  }

  const options: Record<string, unknown> = {};
  let classes: string[] | undefined;
  const classesText = one('classes');
  if (classesText !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(classesText);
    } catch {
      parsed = undefined;
    }
    const names = Array.isArray(parsed) ? parsed.map((c) => (typeof c === 'number' ? String(c) : c)) : undefined;
    if (!names || names.length < 2 || !names.every((c) => typeof c === 'string' && c.trim() !== '' && c.length <= 200)) {
      problem('classes', 'must be a JSON array of two or more class names, e.g. ["cat", "dog"]');
    } else if (new Set(names).size !== names.length) {
      problem('classes', 'must not name a class twice');
    } else {
      classes = (names as string[]).map((c) => c.trim());
      options.classes = classes;
    }
  }
  let imageShape: number[] | undefined;
  const imageShapeText = one('imageShape');
  if (imageShapeText !== undefined) {
    const dims = integers(imageShapeText);
    if (!dims || dims.length < 2 || dims.length > 3 || (dims.length === 3 && dims[2] !== 1 && dims[2] !== 3)) {
      problem('imageShape', 'must be [height, width] or [height, width, channels] with 1 or 3 channels, e.g. [28, 28]');
    } else {
      imageShape = dims.length === 2 ? [...dims, 1] : dims;
      options.imageShape = imageShape;
    }
  }
  let imageSize: [number, number] | undefined;
  const imageSizeText = one('imageSize');
  if (imageSizeText !== undefined) {
    const dims = integers(imageSizeText);
    if (!dims || dims.length !== 2 || dims.some((d) => d > 4096)) problem('imageSize', 'must be [height, width], each 1 to 4096, e.g. [28, 28]');
    else {
      imageSize = [dims[0]!, dims[1]!];
      options.imageSize = imageSize;
    }
  }
  let channels: 1 | 3 | undefined;
  const channelsText = one('channels');
  if (channelsText !== undefined) {
    if (channelsText.trim() === '1' || channelsText.trim() === '3') channels = Number(channelsText.trim()) as 1 | 3;
    else problem('channels', 'must be 1 (greyscale) or 3 (RGB)');
    if (channels) options.channels = channels;
  }
  const layoutText = one('layout');
  let layout: 'flat' | 'image' = 'flat';
  if (layoutText !== undefined) {
    if (layoutText === 'flat' || layoutText === 'image') layout = layoutText;
    else problem('layout', 'must be "flat" or "image"');
  }
  const labelColumn = one('labelColumn') ?? 'label';
  if (labelColumn.trim() === '') problem('labelColumn', 'must not be empty');

  if (errors.length > 0 || !format || name === undefined) {
    const first = errors[0]!;
    throw new HttpProblem(400, 'validation', 'The request is not valid', `body ${first.pointer} ${first.detail}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`, errors);
  }

  const common = preprocessing ? { preprocessing } : {};
  let job: UploadJob;
  if (format === 'csv') {
    job = { kind: 'csv', file: files.get('file')!, labelColumn: labelColumn.trim(), ...common, ...(classes ? { classes } : {}), ...(imageShape ? { imageShape } : {}) };
    options.labelColumn = labelColumn.trim();
  } else if (format === 'jsonl') {
    job = { kind: 'jsonl', file: files.get('file')!, ...common, ...(classes ? { classes } : {}), ...(imageShape ? { imageShape } : {}) };
  } else if (format === 'idx') {
    job = { kind: 'idx', images: files.get('images')!, labels: files.get('labels')!, layout, ...common };
    options.layout = layout;
  } else {
    job = { kind: 'images', file: files.get('file')!, layout, ...common, ...(imageSize ? { imageSize } : {}), ...(channels ? { channels } : {}) };
    options.layout = layout;
  }
  if (preprocessing) options.preprocessing = preprocessing;
  return {
    name: name.trim(),
    job,
    source: {
      upload: format,
      files: upload.files.map((f) => ({ field: f.field, filename: f.filename, bytes: f.bytes })),
      ...options,
    },
  };
}
