/**
 * How deep a JSON text nests, found by one pass over its characters with a counter (no
 * recursion, no allocation), so that text nested thousands deep is refused before JSON.parse
 * and the recursive error locator ever see it: those cost memory and stack per level.
 */

export interface TooDeep {
  /** 0-based offset of the bracket that went one level too deep */
  at: number;
  maxDepth: number;
}

/** The first place `text` nests deeper than `maxDepth` arrays and objects, if any; brackets inside strings do not count. */
export function jsonTooDeep(text: string, maxDepth: number): TooDeep | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return { at: i, maxDepth };
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return undefined;
}

/** "line 3, column 7" of a 0-based offset in `text`. */
export function lineColumn(text: string, at: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: at - start + 1 };
}
