/** Builders of upload files (IDX, PNG, zip, tar) and upload helpers shared by the dataset and model tests. */
import { gzipSync, crc32 } from 'node:zlib';
import sharp from 'sharp';
import tar from 'tar-stream';
import { waitFor, type Harness } from '../../helpers/harness.js';

export type Reply = { status: number; headers: Headers; body: any };

export interface UploadFile {
  field: string;
  content: Uint8Array | string;
  filename?: string;
}

/** POSTs multipart/form-data the way `curl -F` does. */
export async function postForm(
  h: Pick<Harness, 'url'>,
  path: string,
  fields: Record<string, string>,
  files: UploadFile[],
  opts: { headers?: Record<string, string> } = {},
): Promise<Reply> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  for (const f of files) form.append(f.field, new Blob([f.content as BlobPart]), f.filename ?? `${f.field}.bin`);
  const res = await fetch(h.url + path, { method: 'POST', body: form, headers: opts.headers ?? {} });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body };
}

/** Waits until a dataset is no longer validating; returns it. */
export async function settled(h: Pick<Harness, 'request'>, id: string, timeoutMs = 30_000): Promise<any> {
  return waitFor(
    `dataset ${id} to finish validating`,
    async () => {
      const { body } = await h.request('GET', `/v1/datasets/${id}`);
      return body.status === 'validating' ? undefined : body;
    },
    timeoutMs,
  );
}

/** Uploads, asserts the 202, waits: the dataset as it ends. */
export async function uploadDataset(h: Pick<Harness, 'url' | 'request'>, fields: Record<string, string>, files: UploadFile[]): Promise<any> {
  const res = await postForm(h, '/v1/datasets', fields, files);
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status}: ${JSON.stringify(res.body)}`);
  if (res.body.status !== 'validating') throw new Error(`expected validating, got ${JSON.stringify(res.body)}`);
  return settled(h, res.body.id);
}

/** An IDX file: big-endian header, then the values. */
export function idx(type: 0x08 | 0x0d, dims: number[], values: ArrayLike<number>, opts: { gzip?: boolean } = {}): Uint8Array {
  const size = type === 0x08 ? 1 : 4;
  const buf = Buffer.alloc(4 + 4 * dims.length + values.length * size);
  buf[2] = type;
  buf[3] = dims.length;
  dims.forEach((d, i) => buf.writeUInt32BE(d, 4 + 4 * i));
  const at = 4 + 4 * dims.length;
  for (let i = 0; i < values.length; i++) {
    if (type === 0x08) buf[at + i] = values[i]!;
    else buf.writeFloatBE(values[i], at + i * 4);
  }
  return opts.gzip ? gzipSync(buf) : buf;
}

/** A greyscale PNG of h x w pixels. */
export async function png(pixels: Uint8Array, h: number, w: number, channels: 1 | 3 = 1): Promise<Buffer> {
  let image = sharp(Buffer.from(pixels), { raw: { width: w, height: h, channels } });
  if (channels === 1) image = image.toColourspace('b-w');
  return image.png().toBuffer();
}

export async function jpeg(pixels: Uint8Array, h: number, w: number, channels: 1 | 3 = 3): Promise<Buffer> {
  return sharp(Buffer.from(pixels), { raw: { width: w, height: h, channels } })
    .jpeg({ quality: 95 })
    .toBuffer();
}

/** A zip with stored (uncompressed) entries; a name ending in / is a folder. */
export function zip(entries: Array<[string, Uint8Array]>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBytes = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, Buffer.from(data));
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

export async function tarball(entries: Array<[string, Uint8Array]>, gzip = false): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, data] of entries) {
    if (name.endsWith('/')) pack.entry({ name, type: 'directory' });
    else pack.entry({ name }, Buffer.from(data));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  const out = Buffer.concat(chunks);
  return gzip ? gzipSync(out) : out;
}

/** Asserts no 5xx and returns the reply, for malformed-input tests. */
export function no5xx(res: Reply): Reply {
  if (res.status >= 500) throw new Error(`server error ${res.status}: ${JSON.stringify(res.body)}`);
  return res;
}
