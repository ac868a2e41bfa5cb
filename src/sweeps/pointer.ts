/**
 * JSON pointers (RFC 6901) into a job spec: the keys of a sweep's `parameters`. Hand-written
 * because a sweep needs only parsing, escaping and setting one value in a copy, a dozen lines,
 * where the libraries bring a whole document model.
 */

/** The pointer's reference tokens, unescaped (~1 is /, ~0 is ~), or null when it is not a pointer. */
export function parsePointer(pointer: string): string[] | null {
  if (!pointer.startsWith('/')) return null;
  const tokens = pointer.slice(1).split('/');
  if (tokens.some((t) => /~[^01]|~$/.test(t))) return null;
  return tokens.map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** One reference token escaped, so a pointer can name it (a parameter's pointer inside /parameters). */
export const escapeToken = (token: string) => token.replace(/~/g, '~0').replace(/\//g, '~1');

export type SetResult = { ok: true; doc: unknown } | { ok: false; detail: string };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A copy of `doc` with the value at `tokens` set. The parent must exist (an object, or an array
 * holding that index); the last member may be new (a spec leaves many fields to their defaults).
 */
export function setAt(doc: unknown, tokens: readonly string[], value: unknown): SetResult {
  if (tokens.length === 0) return { ok: false, detail: 'names the whole spec; expected a pointer to one of its fields' };
  const [head, ...rest] = tokens as [string, ...string[]];
  if (Array.isArray(doc)) {
    if (!/^(0|[1-9][0-9]*)$/.test(head) || Number(head) >= doc.length)
      return { ok: false, detail: `has no item ${JSON.stringify(head)} in an array of ${doc.length}` };
    const copy: unknown[] = [...(doc as unknown[])];
    const index = Number(head);
    if (rest.length === 0) copy[index] = value;
    else {
      const inner = setAt(doc[index], rest, value);
      if (!inner.ok) return inner;
      copy[index] = inner.doc;
    }
    return { ok: true, doc: copy };
  }
  if (!isObject(doc)) return { ok: false, detail: `goes through ${JSON.stringify(head)} of a value that is not an object` };
  if (rest.length === 0) return { ok: true, doc: { ...doc, [head]: value } };
  if (!(head in doc))
    return { ok: false, detail: `goes through ${JSON.stringify(head)}, which the template does not have; expected a pointer whose parent is in the template` };
  const inner = setAt(doc[head], rest, value);
  return inner.ok ? { ok: true, doc: { ...doc, [head]: inner.doc } } : inner;
}
