// A folder of photos as one archive, since POST /v1/datasets takes images only as an archive
// (.zip, .tar or .tar.gz). Hand-written rather than a library because a plain ustar archive is a
// few header blocks around the files themselves: the result is a Blob that refers to the chosen
// files, so nothing is read into memory before the upload streams it. A zip (every library in
// node_modules or on npm) needs a CRC-32 of each file, i.e. reading every photo first, and
// compression would gain nothing on PNG and JPEG.

const BLOCK = 512;
const utf8 = new TextEncoder();

/** `value` as a NUL-terminated octal field of `width` bytes. */
function octal(header, offset, width, value) {
  header.set(utf8.encode(`${value.toString(8).padStart(width - 1, '0')}\0`), offset);
}

/** The name and prefix fields of `path` (ustar splits a long path at a '/'), or null when it cannot be stored. */
function splitPath(path) {
  const bytes = utf8.encode(path);
  if (bytes.length <= 100) return { name: bytes, prefix: new Uint8Array(0) };
  for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
    const prefix = utf8.encode(path.slice(0, cut));
    const name = utf8.encode(path.slice(cut + 1));
    if (prefix.length <= 155 && name.length <= 100) return { name, prefix };
  }
  return null;
}

function header(path, size, mtime) {
  const parts = splitPath(path);
  if (!parts) throw new Error(`the path ${path} is too long for an archive (at most 255 bytes); rename the folder or file`);
  const block = new Uint8Array(BLOCK);
  block.set(parts.name, 0);
  octal(block, 100, 8, 0o644); // mode
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, size);
  octal(block, 136, 12, Math.floor(mtime / 1000));
  block.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  block[156] = 0x30; // '0': a regular file
  block.set(utf8.encode('ustar\u000000'), 257);
  block.set(parts.prefix, 345);
  const sum = block.reduce((a, b) => a + b, 0);
  block.set(utf8.encode(`${sum.toString(8).padStart(6, '0')}\0 `), 148);
  return block;
}

/** A .tar of `entries` ([{ path, file }], path '/'-separated inside the archive), as a Blob. */
export function tarBlob(entries) {
  const parts = [];
  for (const { path, file } of entries) {
    parts.push(header(path, file.size, file.lastModified || Date.now()), file);
    const pad = (BLOCK - (file.size % BLOCK)) % BLOCK;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(2 * BLOCK)); // the end: two empty blocks
  return new Blob(parts, { type: 'application/x-tar' });
}
