// The photos of a chosen or dropped folder, each with its path inside the folder
// (`pets/cat/001.jpg`), ready to become an archive entry: the folder names are the classes.

const PHOTO = /\.(png|jpe?g)$/i;
/** what the service skips anyway: hidden files and macOS resource forks */
const skipped = (path) => path.split('/').some((p) => p.startsWith('.') || p === '__MACOSX');

const keep = (entries) => entries.filter((e) => PHOTO.test(e.path) && !skipped(e.path)).sort((a, b) => (a.path < b.path ? -1 : 1));

/** From an `<input type=file webkitdirectory>`: each file knows its path under the chosen folder. */
export const photosOfInput = (files) => keep([...files].map((file) => ({ path: file.webkitRelativePath || file.name, file })));

/** Every file under a dropped directory entry (the File System API reads a directory in batches). */
async function walk(entry) {
  if (entry.isFile) return [{ path: entry.fullPath.replace(/^\/+/, ''), file: await new Promise((ok, fail) => entry.file(ok, fail)) }];
  const reader = entry.createReader();
  const found = [];
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (batch.length === 0) return found;
    for (const child of batch) found.push(...(await walk(child)));
  }
}

/** The dropped folders' photos, or null when the drop holds no folder (plain files: the caller's case). */
export async function photosOfDrop(dataTransfer) {
  // entries must be taken while the drop event runs; the data transfer is emptied after it
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.some((e) => e.isDirectory)) return null;
  return keep((await Promise.all(entries.map(walk))).flat());
}

/** { class: count } from the paths: a photo's class is the folder it lies in. */
export function classCounts(photos) {
  const counts = {};
  for (const { path } of photos) {
    const parts = path.split('/');
    const cls = parts.length >= 2 ? parts[parts.length - 2] : '(no folder)';
    counts[cls] = (counts[cls] ?? 0) + 1;
  }
  return counts;
}
