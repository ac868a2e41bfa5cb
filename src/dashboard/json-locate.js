// Where each JSON pointer of a JSON text starts, so an API error about /hyperparameters/epochs
// can be shown on the line that holds that field.

const escape = (key) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** Map from JSON pointer ('' for the root) to the offset of its key (members) or value (items). Expects valid JSON. */
export function locatePointers(text) {
  const at = new Map();
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const string = () => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const value = (pointer, start) => {
    ws();
    at.set(pointer, start ?? i);
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (let n = 0; ; n++) {
        ws();
        if (c === '{') {
          const keyAt = i;
          const key = string();
          ws();
          i++; // the colon
          value(`${pointer}/${escape(key)}`, keyAt);
        } else {
          value(`${pointer}/${n}`);
        }
        ws();
        if (text[i++] !== ',') return;
      }
    }
    if (c === '"') return void string();
    while (i < text.length && !' \t\r\n,]}'.includes(text[i])) i++;
  };
  value('');
  return at;
}

export const lineOf = (text, offset) => text.slice(0, offset).split('\n').length;

/**
 * The line an error at `pointer` belongs on: the field's own line, else (a missing field)
 * the line of the nearest enclosing object that exists.
 */
export function lineOfPointer(text, pointer) {
  const at = locatePointers(text);
  let p = pointer === '/' ? '' : pointer;
  for (;;) {
    if (at.has(p)) return { line: lineOf(text, at.get(p)), exact: p === (pointer === '/' ? '' : pointer) };
    if (p === '') return { line: 1, exact: false };
    p = p.slice(0, p.lastIndexOf('/'));
  }
}
