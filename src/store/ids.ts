import { randomBytes } from 'node:crypto';

/**
 * `<prefix>_<12 hex of ms time><12 hex random>`: sortable by creation time, so list
 * pages can use the id itself as the cursor, and unguessable enough to hand out.
 */
export function newId(prefix: 'job' | 'ds' | 'mdl' | 'swp'): string {
  return `${prefix}_${Date.now().toString(16).padStart(12, '0')}${randomBytes(6).toString('hex')}`;
}
