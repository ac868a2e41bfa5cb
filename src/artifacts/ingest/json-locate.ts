/**
 * Says where in a line of JSON something is: the offset of a syntax error (JSON.parse names
 * no position for many errors), or where the value at a JSON pointer starts, so a JSONL
 * error can name its column. Only runs on the error path, so it favours clarity over speed.
 */

class JsonSyntax extends Error {
  constructor(
    readonly at: number,
    message: string,
  ) {
    super(message);
  }
}

class Scanner {
  private i = 0;
  found?: number;

  constructor(
    private readonly s: string,
    private readonly target?: string[],
  ) {}

  run(): void {
    this.value([]);
    this.ws();
    if (this.i < this.s.length) this.fail(`unexpected ${this.describe()} after the end of the JSON value`);
  }

  private fail(message: string): never {
    throw new JsonSyntax(this.i, message);
  }

  private describe(): string {
    const c = this.s[this.i];
    if (c === undefined) return 'end of line';
    return JSON.stringify(c);
  }

  private ws(): void {
    while (this.i < this.s.length && ' \t\n\r'.includes(this.s[this.i])) this.i++;
  }

  private value(path: string[]): void {
    this.ws();
    const t = this.target;
    if (this.found === undefined && t && path.length === t.length && path.every((p, k) => p === t[k])) this.found = this.i;
    const c = this.s[this.i];
    if (c === '{') return this.object(path);
    if (c === '[') return this.array(path);
    if (c === '"') return this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const word of ['true', 'false', 'null']) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return;
      }
    }
    for (const word of ['NaN', 'Infinity', '-Infinity']) {
      if (this.s.startsWith(word, this.i)) this.fail(`${word} is not a number in JSON; expected a finite number`);
    }
    this.fail(`unexpected ${this.describe()}; expected a value`);
  }

  private object(path: string[]): void {
    this.i++;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail(`unexpected ${this.describe()}; expected a "quoted" property name`);
      const start = this.i;
      this.string();
      const key = JSON.parse(this.s.slice(start, this.i)) as string;
      this.ws();
      if (this.s[this.i] !== ':') this.fail(`unexpected ${this.describe()}; expected ':' after the property name`);
      this.i++;
      this.value([...path, key]);
      this.ws();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === '}') {
        this.i++;
        return;
      }
      this.fail(`unexpected ${this.describe()}; expected ',' or '}'`);
    }
  }

  private array(path: string[]): void {
    this.i++;
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return;
    }
    for (let k = 0; ; k++) {
      this.value([...path, String(k)]);
      this.ws();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === ']') {
        this.i++;
        return;
      }
      this.fail(`unexpected ${this.describe()}; expected ',' or ']'`);
    }
  }

  private string(): void {
    this.i++;
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined) this.fail('the string is never closed; expected a closing "');
      if (c === '"') {
        this.i++;
        return;
      }
      if (c < ' ') this.fail('a control character inside a string must be escaped');
      if (c === '\\') {
        const e = this.s[this.i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.s.slice(this.i + 2, this.i + 6))) this.fail('\\u must be followed by four hex digits');
          this.i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) this.fail(`invalid escape \\${e ?? ''}`);
        this.i += 2;
        continue;
      }
      this.i++;
    }
  }

  private number(): void {
    const re = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
    re.lastIndex = this.i;
    const m = re.exec(this.s);
    if (!m) {
      if (this.s.startsWith('-Infinity', this.i)) this.fail('-Infinity is not a number in JSON; expected a finite number');
      this.fail('invalid number');
    }
    this.i += m[0].length;
  }
}

/** The 0-based offset and a description of the first syntax error in `text`, if any. */
export function jsonSyntaxError(text: string): { at: number; message: string } | undefined {
  try {
    new Scanner(text).run();
    return undefined;
  } catch (err) {
    if (err instanceof JsonSyntax) return { at: err.at, message: err.message };
    throw err;
  }
}

/** The 0-based offset where the value at `path` starts in valid JSON `text`. */
export function jsonValueOffset(text: string, path: string[]): number | undefined {
  const s = new Scanner(text, path);
  try {
    s.run();
  } catch {
    // only called on text JSON.parse accepted
  }
  return s.found;
}

export const toPointer = (path: Array<string | number>) => path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
