/**
 * The models one prediction child keeps loaded, least recently used first out, bounded by
 * count and by weight bytes. Hand-written: a Map in use order is all an LRU of a few entries
 * needs, and eviction must dispose the model's tensors, which a generic cache would not know.
 */

export interface CacheLimits {
  models: number;
  bytes: number;
}

interface Entry<T> {
  value: T;
  bytes: number;
}

export class ModelCache<T extends { dispose(): void }> {
  private readonly entries = new Map<string, Entry<T>>();
  private total = 0;

  constructor(private readonly limits: CacheLimits) {}

  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    // re-inserted: Map order is use order
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /**
   * Keeps `value`, dropping the least recently used until both limits hold. A model larger than
   * the byte limit alone is still kept (it is the one being used), with nothing beside it.
   */
  set(key: string, value: T, bytes: number): void {
    this.remove(key);
    this.entries.set(key, { value, bytes });
    this.total += bytes;
    for (const [oldest] of this.entries) {
      if (oldest === key || (this.entries.size <= this.limits.models && this.total <= this.limits.bytes)) break;
      this.remove(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.total;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.total -= entry.bytes;
    entry.value.dispose();
  }
}
