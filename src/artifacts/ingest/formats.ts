/**
 * The upload formats, one descriptor each: its files, the options that apply, its docs, and how
 * a checked form becomes a conversion job. The form parser, the route's and the OpenAPI
 * descriptions and docs/datasets.md's table all read this registry, and the conversion worker's
 * table of converters is keyed by the same kinds (typed, so a format without a converter fails
 * the build). Pure data and parsing: no fs, no sharp, so the API can import it.
 */
import { jsonTooDeep } from '../json-depth.js';
import type { CsvJob, IdxJob, ImagesJob, IngestRequest, JsonlJob, Preprocessing } from './job.js';

/** Parses an option's text; a string is what was wrong with it (after "/field "). */
type Parse<T> = (text: string, limits: FormLimits) => T | { problem: string };

export interface FormLimits {
  /** IMAGE_MAX_PIXELS: the largest imageSize area */
  maxPixels: number;
}

interface Option<T> {
  doc: string;
  parse: Parse<T>;
  /** the whole set of values, for an option that is one of a few (the OpenAPI form's enum, the dashboard's menus) */
  choices?: readonly string[];
}

/** "[28, 28]", "28,28" or "28x28" */
function integers(text: string): number[] | undefined {
  const t = text.trim();
  let values: unknown;
  if (t.startsWith('[')) {
    if (jsonTooDeep(t, 1)) return undefined;
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

const number = (text: string) => (text.trim() === '' ? NaN : Number(text.trim()));

const RESIZE = ['stretch', 'cover', 'contain'] as const;
const LAYOUT = ['flat', 'image'] as const;

/** `text` when it is one of `choices`, else what they are ('must be "a", "b" or "c"'). */
function oneOf<C extends string>(choices: readonly C[], text: string): C | { problem: string } {
  const found = choices.find((c) => c === text);
  return (
    found ?? {
      problem: `must be ${choices
        .map((c) => JSON.stringify(c))
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1')}`,
    }
  );
}

/** Every option of every format, each parsed one way. */
export const OPTIONS = {
  labelColumn: {
    doc: 'the column holding the labels (default `label`); every other column is a feature',
    parse: (text) => (text.trim() === '' ? { problem: 'must not be empty' } : text.trim()),
  } satisfies Option<string>,
  classes: {
    doc: 'JSON array of class names, fixing their order; a label outside it is an error',
    parse: (text) => {
      let parsed: unknown;
      try {
        // a list of names is one level deep: anything deeper is refused before parsing
        parsed = jsonTooDeep(text, 1) ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const items: unknown[] | undefined = Array.isArray(parsed) ? parsed : undefined;
      const names = items?.map((c) => (typeof c === 'number' ? String(c) : c));
      if (!names || names.length < 2 || !names.every((c): c is string => typeof c === 'string' && c.trim() !== '' && c.length <= 200)) {
        return { problem: 'must be a JSON array of two or more class names, e.g. ["cat", "dog"]' };
      }
      if (new Set(names).size !== names.length) return { problem: 'must not name a class twice' };
      return names.map((c) => c.trim());
    },
  } satisfies Option<string[]>,
  imageShape: {
    doc: '`[h, w]` or `[h, w, c]` when flat rows are images',
    parse: (text) => {
      const dims = integers(text);
      if (!dims || dims.length < 2 || dims.length > 3 || (dims.length === 3 && dims[2] !== 1 && dims[2] !== 3)) {
        return { problem: 'must be [height, width] or [height, width, channels] with 1 or 3 channels, e.g. [28, 28]' };
      }
      return dims.length === 2 ? [...dims, 1] : dims;
    },
  } satisfies Option<number[]>,
  imageSize: {
    doc: "`[h, w]` every image is resized to (default: the first image's size); h x w at most IMAGE_MAX_PIXELS",
    parse: (text, limits) => {
      const dims = integers(text);
      if (!dims || dims.length !== 2 || dims.some((d) => d > 4096)) return { problem: 'must be [height, width], each 1 to 4096, e.g. [28, 28]' };
      const [h, w] = dims as [number, number];
      if (h * w > limits.maxPixels) {
        return {
          problem: `is ${h}x${w} = ${h * w} pixels per image, more than the ${limits.maxPixels} allowed (IMAGE_MAX_PIXELS); expected a smaller size, e.g. [64, 64]`,
        };
      }
      return [h, w] as [number, number];
    },
  } satisfies Option<[number, number]>,
  resize: {
    doc: 'how an image of another aspect ratio meets imageSize: `stretch` (default), `cover` (scaled to fill, the overflow cropped about the centre) or `contain` (scaled to fit, padded with black)',
    choices: RESIZE,
    parse: (text) => oneOf(RESIZE, text),
  } satisfies Option<'stretch' | 'cover' | 'contain'>,
  channels: {
    doc: '`1` (greyscale) or `3` (RGB; greyscale images become 3 equal channels, as a 3-channel base model wants); default: 1 if the first image is greyscale, else 3',
    choices: ['1', '3'],
    parse: (text) => (text.trim() === '1' || text.trim() === '3' ? (Number(text.trim()) as 1 | 3) : { problem: 'must be 1 (greyscale) or 3 (RGB)' }),
  } satisfies Option<1 | 3>,
  layout: {
    doc: '`flat` (default; featureShape `[h*w*c]`, like the built-in mnist) or `image` (`[h, w, c]`)',
    choices: LAYOUT,
    parse: (text) => oneOf(LAYOUT, text),
  } satisfies Option<'flat' | 'image'>,
  scale: {
    doc: 'preprocessing: model input = stored * scale + offset; default 2/255 for pixels (idx ubyte, images), else 1',
    parse: (text) => {
      const v = number(text);
      return Number.isFinite(v) && v !== 0 ? v : { problem: 'must be a finite number other than 0' };
    },
  } satisfies Option<number>,
  offset: {
    doc: 'preprocessing offset; default -1 for pixels, else 0',
    parse: (text) => {
      const v = number(text);
      return Number.isFinite(v) ? v : { problem: 'must be a finite number' };
    },
  } satisfies Option<number>,
};

export type OptionName = keyof typeof OPTIONS;
/** The options a form gave, parsed. */
export type Options = { [K in OptionName]?: Exclude<ReturnType<(typeof OPTIONS)[K]['parse']>, { problem: string }> };

/** What a format turns into: the job without output directory and limit, and what its `source` shows. */
export interface Built<J> {
  job: J;
  /** the options as the dataset's `source` shows them, defaults included */
  shown: Record<string, unknown>;
}

/** A format whose file fields are `F`: `build` gets a path for each of them, never fewer (see buildUpload). */
interface Format<J, F extends string> {
  doc: string;
  /** file fields and what each holds */
  files: Record<F, string>;
  options: readonly OptionName[];
  /** an example command line, for the docs */
  example: string;
  build(files: Record<F, string>, o: Options, preprocessing: Preprocessing | undefined): Built<J>;
}

type Job<J> = Omit<J, 'outDir' | 'limit'>;
const withPreprocessing = (p: Preprocessing | undefined) => (p ? { preprocessing: p } : {});
const some = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export const FORMATS = {
  csv: {
    doc: 'a header row naming the columns, then one example per row',
    files: { file: 'the CSV file' },
    options: ['labelColumn', 'classes', 'imageShape', 'scale', 'offset'],
    example: 'curl -F name=iris -F format=csv -F file=@iris.csv -F labelColumn=species $API/v1/datasets',
    build: (files, o, p) => {
      const labelColumn = o.labelColumn ?? 'label';
      return {
        job: { kind: 'csv', file: files.file, labelColumn, ...withPreprocessing(p), ...some({ classes: o.classes, imageShape: o.imageShape }) },
        shown: some({ classes: o.classes, imageShape: o.imageShape, labelColumn }),
      };
    },
  } satisfies Format<Job<CsvJob>, 'file'>,
  jsonl: {
    doc: 'one `{"x": ..., "y": ...}` object per line',
    files: { file: 'the JSON Lines file' },
    options: ['classes', 'imageShape', 'scale', 'offset'],
    example: 'curl -F name=points -F format=jsonl -F file=@points.jsonl $API/v1/datasets',
    build: (files, o, p) => ({
      job: { kind: 'jsonl', file: files.file, ...withPreprocessing(p), ...some({ classes: o.classes, imageShape: o.imageShape }) },
      shown: some({ classes: o.classes, imageShape: o.imageShape }),
    }),
  } satisfies Format<Job<JsonlJob>, 'file'>,
  idx: {
    doc: 'the MNIST format: an images file of `[count, ...item shape]` values and a labels file of `[count]` integers',
    files: { images: 'the images (or features) IDX file, optionally gzipped', labels: 'the labels IDX file, optionally gzipped' },
    options: ['layout', 'scale', 'offset'],
    example: 'curl -F name=mnist -F format=idx -F images=@train-images-idx3-ubyte.gz -F labels=@train-labels-idx1-ubyte.gz $API/v1/datasets',
    build: (files, o, p) => {
      const layout = o.layout ?? 'flat';
      return { job: { kind: 'idx', images: files.images, labels: files.labels, layout, ...withPreprocessing(p) }, shown: { layout } };
    },
  } satisfies Format<Job<IdxJob>, 'images' | 'labels'>,
  images: {
    doc: 'an archive (.zip, .tar or .tar.gz) with one folder per class holding PNG or JPEG files',
    files: { file: 'a .zip, .tar or .tar.gz with one folder per class' },
    options: ['imageSize', 'resize', 'channels', 'layout', 'scale', 'offset'],
    example: "curl -F name=photos -F format=images -F file=@photos.zip -F imageSize='[224,224]' -F resize=cover -F channels=3 $API/v1/datasets",
    build: (files, o, p) => {
      const layout = o.layout ?? 'flat';
      const resize = o.resize ?? 'stretch';
      return {
        job: { kind: 'images', file: files.file, layout, resize, ...withPreprocessing(p), ...some({ imageSize: o.imageSize, channels: o.channels }) },
        shown: { ...some({ imageSize: o.imageSize, channels: o.channels }), resize, layout },
      };
    },
  } satisfies Format<Job<ImagesJob>, 'file'>,
};

export type FormatName = keyof typeof FORMATS;
export const FORMAT_NAMES = Object.keys(FORMATS) as FormatName[];

/** The conversion job of an upload format (every one but a derivation). */
export type UploadJob = Exclude<IngestRequest, { kind: 'derive' }>;

/**
 * The conversion job of `format` from the uploaded files by field, or the file fields the format
 * needs that were not uploaded: a format's build is only ever given all of its files.
 */
export function buildUpload(
  format: FormatName,
  uploaded: Partial<Record<string, string>>,
  o: Options,
  preprocessing: Preprocessing | undefined,
): Built<UploadJob> | { missing: string[] } {
  const f: Format<UploadJob, string> = FORMATS[format];
  const files: Record<string, string> = {};
  const missing: string[] = [];
  for (const field of Object.keys(f.files)) {
    const path = uploaded[field];
    if (path === undefined) missing.push(field);
    else files[field] = path;
  }
  return missing.length > 0 ? { missing } : f.build(files, o, preprocessing);
}

/** The formats an option applies to. */
export const formatsWithOption = (name: OptionName) => FORMAT_NAMES.filter((f) => (FORMATS[f].options as readonly string[]).includes(name));
export const FILE_FIELDS = [...new Set(FORMAT_NAMES.flatMap((f) => Object.keys(FORMATS[f].files)))];

/** The tables and examples of docs/datasets.md's Uploads section (a test keeps the two equal). */
export function formatTable(): string {
  const rows = FORMAT_NAMES.map((name) => {
    const f = FORMATS[name];
    const files = Object.keys(f.files)
      .map((k) => `\`${k}\``)
      .join(', ');
    return `| \`${name}\` | ${f.doc} | ${files} | ${f.options.map((o) => `\`${o}\``).join(', ')} |`;
  });
  const options = (Object.keys(OPTIONS) as OptionName[]).map((name) => `| \`${name}\` | ${formatsWithOption(name).join(', ')} | ${OPTIONS[name].doc} |`);
  return [
    '| format | what | files | options |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    '| option | formats | meaning |',
    '| --- | --- | --- |',
    ...options,
    '',
    '```sh',
    ...FORMAT_NAMES.map((name) => FORMATS[name].example),
    '```',
  ].join('\n');
}
