/**
 * The entries of an uploaded .zip, .tar or .tar.gz, in archive order, each read into memory
 * on request (one entry at a time, capped), never extracted to disk: names are only used as
 * class folders, so an entry like ../../etc/passwd can do no harm.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import tar, { type Extract } from 'tar-stream';
import yauzl from 'yauzl';
import { IngestError } from './ingest-error.js';

export interface ArchiveEntry {
  /** path inside the archive, '/'-separated, without a leading './' */
  name: string;
  kind: 'file' | 'directory' | 'other';
  read(): Promise<Buffer>;
}

const FIELD = 'file';

type Kind = 'zip' | 'tar' | 'tar.gz';

function sniff(file: string): Kind | undefined {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, 512, 0);
    if (n >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5)) return 'zip';
    if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (n >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
    return undefined;
  } finally {
    closeSync(fd);
  }
}

const corrupt = (detail: string, entry?: string) =>
  new IngestError('corrupt_archive', `the archive is damaged${entry ? ` at entry ${JSON.stringify(entry)}` : ''}: ${detail}`, {
    field: FIELD,
    ...(entry ? { entry } : {}),
  });

type TarSource = Extract extends AsyncIterable<infer S> ? S : never;

async function collect(stream: AsyncIterable<Buffer> & { destroy(): void }, name: string, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > maxBytes) {
      stream.destroy();
      throw new IngestError('entry_too_large', `entry ${JSON.stringify(name)} is larger than ${maxBytes} bytes; images are expected to be far smaller`, {
        field: FIELD,
        entry: name,
      });
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

const normalise = (name: string) => name.replace(/\\/g, '/').replace(/^(\.\/|\/)+/, '');

export async function* archiveEntries(file: string, maxEntryBytes: number): AsyncGenerator<ArchiveEntry> {
  const kind = sniff(file);
  if (kind === undefined) {
    throw new IngestError(
      'unsupported_archive',
      'file is not a .zip, .tar or .tar.gz archive (judged by its first bytes); expected one of those, holding one folder per class',
      {
        field: FIELD,
      },
    );
  }
  if (kind === 'zip') yield* zipEntries(file, maxEntryBytes);
  else yield* tarEntries(file, kind === 'tar.gz', maxEntryBytes);
}

async function* zipEntries(file: string, maxEntryBytes: number): AsyncGenerator<ArchiveEntry> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true });
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  let current: string | undefined;
  try {
    const entries = zip.eachEntry();
    for (;;) {
      let next: IteratorResult<yauzl.Entry>;
      try {
        next = await entries.next();
      } catch (err) {
        throw corrupt((err as Error).message, current);
      }
      if (next.done) return;
      const entry = next.value;
      const name = normalise(entry.fileName);
      current = name;
      const directory = entry.fileName.endsWith('/');
      yield {
        name,
        kind: directory ? 'directory' : 'file',
        read: async () => {
          if (entry.isEncrypted()) {
            throw new IngestError('unsupported_archive', `entry ${JSON.stringify(name)} is encrypted; expected an archive without a password`, {
              field: FIELD,
              entry: name,
            });
          }
          if (entry.uncompressedSize > maxEntryBytes) {
            throw new IngestError(
              'entry_too_large',
              `entry ${JSON.stringify(name)} is ${entry.uncompressedSize} bytes; images are expected to be under ${maxEntryBytes}`,
              {
                field: FIELD,
                entry: name,
              },
            );
          }
          try {
            return await collect(await zip.openReadStreamPromise(entry), name, maxEntryBytes);
          } catch (err) {
            if (err instanceof IngestError) throw err;
            throw corrupt((err as Error).message, name);
          }
        },
      };
    }
  } finally {
    zip.close();
  }
}

async function* tarEntries(file: string, gzipped: boolean, maxEntryBytes: number): AsyncGenerator<ArchiveEntry> {
  const extract = tar.extract();
  // tar-stream's streams are streamx streams: errors are handed on to the extractor by hand
  const raw = createReadStream(file);
  raw.on('error', (err) => extract.destroy(err));
  if (gzipped) {
    const gunzip = createGunzip();
    gunzip.on('error', (err) => extract.destroy(err));
    raw.pipe(gunzip).pipe(extract);
  } else {
    raw.pipe(extract);
  }
  let current: string | undefined;
  const iterator = extract[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<TarSource>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw corrupt((err as Error).message, current);
      }
      if (next.done) return;
      const entry = next.value;
      const name = normalise(entry.header.name);
      current = name;
      const type = entry.header.type;
      let consumed = false;
      yield {
        name,
        kind: type === 'file' || type === 'contiguous-file' ? 'file' : type === 'directory' ? 'directory' : 'other',
        read: async () => {
          consumed = true;
          try {
            return await collect(entry as unknown as AsyncIterable<Buffer> & { destroy(): void }, name, maxEntryBytes);
          } catch (err) {
            if (err instanceof IngestError) throw err;
            throw corrupt((err as Error).message, name);
          }
        },
      };
      // the next header follows this entry's data, so unread data must be skipped over
      if (!consumed) entry.resume();
    }
  } finally {
    extract.destroy();
  }
}
