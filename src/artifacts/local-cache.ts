/**
 * The local copies of directories whose truth is the object store, capped in bytes
 * (ARTIFACTS_CACHE_MAX_BYTES): past the cap the least recently used copies are deleted, and
 * fetched again when next needed. Hand-written rather than lru-cache: a copy a training child
 * or a conversion is reading must not be deleted under it, so a copy is pinned while in use,
 * and eviction (a directory removal) is asynchronous, which lru-cache's dispose is not.
 */
import { rm } from 'node:fs/promises';
import { sep } from 'node:path';

interface Entry {
  bytes: number;
  pins: number;
}

export class LocalCache {
  /** in order of last use, oldest first (a Map keeps insertion order) */
  private readonly entries = new Map<string, Entry>();
  private total = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.total;
  }

  /** Records a use of `dir` (holding `bytes`), making it the most recently used copy. */
  touch(dir: string, bytes?: number): void {
    const entry = this.entries.get(dir) ?? { bytes: 0, pins: 0 };
    this.entries.delete(dir);
    if (bytes !== undefined) {
      this.total += bytes - entry.bytes;
      entry.bytes = bytes;
    }
    this.entries.set(dir, entry);
  }

  has(dir: string): boolean {
    return this.entries.has(dir);
  }

  /** Keeps `dir` from eviction until the returned function is called. */
  pin(dir: string): () => void {
    this.touch(dir);
    const entry = this.entries.get(dir)!;
    entry.pins++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.pins--;
    };
  }

  /** Forgets `dir` (its directory is being removed by the caller). */
  forget(dir: string): void {
    const entry = this.entries.get(dir);
    if (!entry) return;
    this.total -= entry.bytes;
    this.entries.delete(dir);
  }

  /** Forgets `dir` and every copy inside it (a base model's feature caches go with `features/<base>`). */
  forgetUnder(dir: string): void {
    for (const d of [...this.entries.keys()]) if (d === dir || d.startsWith(dir + sep)) this.forget(d);
  }

  /**
   * Deletes the least recently used copies not in use until the cache is within its cap. The
   * newest copy stays even alone over the cap: it was just written or fetched to be used.
   */
  async evict(): Promise<string[]> {
    const evicted: string[] = [];
    const newest = [...this.entries.keys()].at(-1);
    for (const [dir, entry] of this.entries) {
      if (this.total <= this.maxBytes || dir === newest) break;
      if (entry.pins > 0) continue;
      this.forget(dir);
      evicted.push(dir);
      await rm(dir, { recursive: true, force: true });
    }
    return evicted;
  }
}
