import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What a directory's files take, counted for the tenant storage quota: the sum of its regular
 * files' sizes, subdirectories included. A directory that is gone counts 0 (its job was deleted).
 */
export async function directoryBytes(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const sizes = await Promise.all(entries.filter((e) => e.isFile()).map(async (e) => (await stat(join(e.parentPath, e.name))).size));
  return sizes.reduce((a, b) => a + b, 0);
}
