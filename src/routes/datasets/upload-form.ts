/**
 * The fields of a dataset upload (multipart/form-data), checked like a JSON body: a missing,
 * misspelt, repeated or ill-formed field is a 400 naming it, before anything is converted.
 * Which files and options a format takes, and how each option is read, is the format registry's
 * (artifacts/ingest/formats.ts); this only walks the form against it.
 */
import {
  buildUpload,
  FILE_FIELDS,
  FORMAT_NAMES,
  FORMATS,
  formatsWithOption,
  OPTIONS,
  type FormLimits,
  type OptionName,
  type Options,
  type UploadJob,
} from '../../artifacts/ingest/formats.js';
import type { Preprocessing } from '../../artifacts/ingest/job.js';
import type { ReceivedUpload } from '../upload-receiver.js';
import { invalid } from './invalid.js';

export interface DatasetUpload {
  name: string;
  job: UploadJob;
  /** what the dataset's `source` shows: the format, the files received, the options */
  source: Record<string, unknown>;
}

const isOption = (field: string): field is OptionName => Object.hasOwn(OPTIONS, field);

export function parseUploadForm(upload: ReceivedUpload, limits: FormLimits): DatasetUpload {
  const errors: Array<{ field: string; detail: string }> = [];
  const problem = (field: string, detail: string) => errors.push({ field, detail });
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
  const format = FORMAT_NAMES.find((f) => f === formatText);
  if (formatText === undefined) problem('format', `is required: one of ${FORMAT_NAMES.join(', ')}`);
  else if (!format) problem('format', `must be one of ${FORMAT_NAMES.map((f) => JSON.stringify(f)).join(', ')}`);
  const spec = format && FORMATS[format];

  const options: Record<string, unknown> = {};
  for (const field of upload.fields.keys()) {
    if (field === 'name' || field === 'format') continue;
    if (FILE_FIELDS.includes(field)) problem(field, `must be a file upload (curl -F ${field}=@path), not a text field`);
    else if (!isOption(field)) problem(field, 'is not a known field');
    else if (spec && !(spec.options as readonly string[]).includes(field))
      problem(field, `does not apply to format ${format} (it applies to ${formatsWithOption(field).join(', ')})`);
    else {
      const text = one(field)!;
      const parsed = OPTIONS[field].parse(text, limits);
      if (typeof parsed === 'object' && parsed !== null && 'problem' in parsed) problem(field, parsed.problem);
      else options[field] = parsed;
    }
  }
  const files: Partial<Record<string, string>> = {};
  for (const f of upload.files) {
    if (!FILE_FIELDS.includes(f.field)) problem(f.field, `is not a known file field (files go in ${FILE_FIELDS.join(', ')})`);
    else if (spec && !(f.field in spec.files)) problem(f.field, `is not a file of format ${format} (expected ${Object.keys(spec.files).join(' and ')})`);
    else if (files[f.field] !== undefined) problem(f.field, 'is given more than once; expected one file');
    else files[f.field] = f.path;
  }
  const o = options as Options;
  // a missing one of the pair is then 1, or 0
  const preprocessing: Preprocessing | undefined = o.scale !== undefined || o.offset !== undefined ? { scale: o.scale ?? 1, offset: o.offset ?? 0 } : undefined;
  const built = format && buildUpload(format, files, o, preprocessing);
  if (built && 'missing' in built) {
    // a file sent as a text field was reported above
    for (const field of built.missing.filter((f) => !upload.fields.has(f)))
      problem(field, `is required for format ${format}: the file to upload (curl -F ${field}=@path)`);
  }

  if (errors.length > 0 || !built || 'missing' in built || name === undefined) {
    throw invalid(errors.map((e) => ({ pointer: `/${e.field}`, in: 'body', detail: e.detail })));
  }
  return {
    name: name.trim(),
    job: built.job,
    source: {
      upload: format,
      files: upload.files.map((f) => ({ field: f.field, filename: f.filename, bytes: f.bytes })),
      ...built.shown,
      ...(preprocessing ? { preprocessing } : {}),
    },
  };
}
