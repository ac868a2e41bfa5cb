/**
 * Image-folder uploads: an archive with one folder per class (`cat/001.png`, `dog/7.jpg`, or
 * all of that under one top folder), decoded with sharp, resized to one size, greyscale or RGB.
 */
import sharp, { type Metadata } from 'sharp';
import { archiveEntries } from './archive.js';
import { DatasetWriter } from './dataset-writer.js';
import { IngestError } from './ingest-error.js';
import type { ImagesJob, IngestResult } from './job.js';
import { LabelSet } from './label-set.js';

const FIELD = 'file';
const IMAGE_EXTENSIONS = /\.(png|jpe?g)$/i;
const MAX_ENTRY_BYTES = 32 << 20;
/** a small file can declare a huge image (a decompression bomb); real dataset images are far smaller */
const MAX_PIXELS = 40_000_000;
/** decodes in flight at once: sharp runs them on libuv's pool, so a few overlap well */
const IN_FLIGHT = 4;
/** sharp's fit for each resize mode; cover crops and contain pads about the centre, padding black */
const FIT = { stretch: 'fill', cover: 'cover', contain: 'contain' } as const;

const corruptImage = (name: string, err: unknown) =>
  new IngestError(
    'corrupt_image',
    `entry ${JSON.stringify(name)} cannot be decoded as an image (${(err as Error).message.split('\n')[0]}); expected a valid PNG or JPEG`,
    {
      field: FIELD,
      entry: name,
    },
  );

type Decoded = { ok: true; pixels: Buffer; label: number } | { ok: false; error: IngestError };

/** Hidden files and macOS resource forks are not data. */
const ignored = (parts: string[]) => parts[0] === '__MACOSX' || parts.some((p) => p.startsWith('.'));

export async function ingestImages(job: ImagesJob): Promise<IngestResult> {
  let size = job.imageSize;
  let channels = job.channels;
  let writer: DatasetWriter | undefined;
  const labels = new LabelSet(undefined, false);
  const directories = new Set<string>();
  const classEntry = new Map<string, string>();
  let layout: { depth: number; prefix: string; example: string } | undefined;
  const pending: Array<Promise<Decoded>> = [];

  const decode = async (bytes: Buffer, name: string, label: number): Promise<Decoded> => {
    try {
      let image = sharp(bytes, { failOn: 'warning', limitInputPixels: MAX_PIXELS })
        .resize(size![1], size![0], { fit: FIT[job.resize], position: 'centre', background: '#000000' })
        .flatten({ background: '#000000' });
      image = channels === 1 ? image.greyscale() : image.toColourspace('srgb');
      const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== channels || data.length !== size![0] * size![1] * channels) {
        throw new Error(`decoded to ${info.width}x${info.height} with ${info.channels} channels`);
      }
      return { ok: true, pixels: data, label };
    } catch (err) {
      return { ok: false, error: corruptImage(name, err) };
    }
  };
  const writeOldest = async () => {
    const done = await pending.shift()!;
    if (!done.ok) throw done.error;
    writer!.slot().set(done.pixels);
    writer!.commit(done.label);
  };

  try {
    for await (const entry of archiveEntries(job.file, MAX_ENTRY_BYTES)) {
      const parts = entry.name.split('/').filter((p) => p !== '');
      if (parts.length === 0 || ignored(parts)) continue;
      if (entry.kind === 'directory') {
        directories.add(parts.join('/'));
        continue;
      }
      if (entry.kind !== 'file' || !IMAGE_EXTENSIONS.test(entry.name)) continue;
      const misplaced = (why: string) =>
        new IngestError('misplaced_entry', `entry ${JSON.stringify(entry.name)} ${why}; expected one folder per class holding the images, like cat/001.png`, {
          field: FIELD,
          entry: entry.name,
        });
      if (parts.length < 2) throw misplaced('is not inside a class folder');
      const prefix = parts.slice(0, -2).join('/');
      if (!layout) layout = { depth: parts.length, prefix, example: entry.name };
      else if (parts.length !== layout.depth || prefix !== layout.prefix) {
        throw misplaced(`is not at the same level as ${JSON.stringify(layout.example)}: class folders must all sit side by side`);
      }
      const className = parts[parts.length - 2];
      const bytes = await entry.read();
      if (!size || !channels) {
        let meta: Metadata;
        try {
          meta = await sharp(bytes, { limitInputPixels: MAX_PIXELS }).metadata();
        } catch (err) {
          throw corruptImage(entry.name, err);
        }
        if (!meta.height || !meta.width) throw corruptImage(entry.name, new Error('it has no size'));
        if (!size && meta.height * meta.width > job.limit.imageMaxPixels) {
          throw new IngestError(
            'image_too_large',
            `entry ${JSON.stringify(entry.name)} is ${meta.height}x${meta.width} pixels, more than the ${job.limit.imageMaxPixels} an example may have (IMAGE_MAX_PIXELS); give imageSize to resize every image, e.g. [64, 64]`,
            { field: FIELD, entry: entry.name, expected: job.limit.imageMaxPixels, found: meta.height * meta.width },
          );
        }
        size ??= [meta.height, meta.width];
        channels ??= (meta.channels ?? 3) <= 2 || meta.space === 'b-w' ? 1 : 3;
      }
      const label = labels.index(className);
      if (typeof label !== 'number')
        throw new IngestError(label.code, `entry ${JSON.stringify(entry.name)}: ${label.message}`, { field: FIELD, entry: entry.name });
      if (!classEntry.has(className)) classEntry.set(className, entry.name);
      writer ??= new DatasetWriter({ dir: job.outDir, featureSize: size[0] * size[1] * channels, dtype: 'uint8', limit: job.limit, field: FIELD });
      pending.push(decode(bytes, entry.name, label));
      if (pending.length >= IN_FLIGHT) await writeOldest();
    }
    while (pending.length > 0) await writeOldest();
    if (!writer || writer.count === 0 || !layout) {
      throw new IngestError('empty', 'the archive holds no PNG or JPEG files; expected one folder per class holding the images', { field: FIELD });
    }
    const classDepth = layout.depth - 1;
    for (const dir of directories) {
      const parts = dir.split('/');
      if (parts.length === classDepth && parts.slice(0, -1).join('/') === layout.prefix && !classEntry.has(parts[classDepth - 1])) {
        const name = parts[classDepth - 1];
        throw new IngestError(
          'class_without_examples',
          `class folder ${JSON.stringify(`${dir}/`)} holds no PNG or JPEG files; every class needs at least one example`,
          {
            field: FIELD,
            entry: `${dir}/`,
            class: name,
          },
        );
      }
    }
    const { classes, mapping } = labels.finish();
    const written = writer.finish(mapping, classes.length);
    writer = undefined;
    const imageShape = [size![0], size![1], channels!];
    return {
      numExamples: written.numExamples,
      featureShape: job.layout === 'image' ? imageShape : [size![0] * size![1] * channels!],
      featureDtype: 'uint8',
      imageShape,
      classes,
      classCounts: written.classCounts,
      preprocessing: job.preprocessing ?? { scale: 2 / 255, offset: -1 },
    };
  } finally {
    writer?.abort();
    // settle decodes still running, so none outlives the conversion
    await Promise.all(pending);
  }
}
