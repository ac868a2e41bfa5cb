/** Numbers written as text (CSV cells), read strictly: decimal only, finite, within float32. */

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NOT_FINITE = /^[+-]?(nan|inf|infinity)$/i;
const FLOAT32_MAX = 3.4028234663852886e38;

export type NumberProblem = { code: 'missing_value' | 'not_numeric' | 'not_finite'; message: string };

/** The value of `text`, or what is wrong with it. */
export function parseNumberText(text: string): number | NumberProblem {
  const t = text.trim();
  if (t === '') return { code: 'missing_value', message: 'is empty; expected a number' };
  if (NOT_FINITE.test(t)) return { code: 'not_finite', message: `is ${JSON.stringify(t)}; expected a finite number` };
  if (!DECIMAL.test(t)) return { code: 'not_numeric', message: `is ${JSON.stringify(t.length > 40 ? `${t.slice(0, 40)}...` : t)}; expected a number` };
  const v = Number(t);
  if (!(Math.abs(v) <= FLOAT32_MAX)) return { code: 'not_finite', message: `is ${t}, beyond the float32 range (±3.4e38)` };
  return v;
}

const ZERO = 48;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * The fast path for the common cell: digits with an optional sign and fraction, at most 15
 * significant digits, so the result is exact before rounding to float32. Returns NaN for
 * anything else, which the caller then reads with parseNumberText for the exact verdict.
 */
export function parseSimpleNumber(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  let negative = false;
  const first = bytes[i];
  if (first === 45 /* - */ || first === 43 /* + */) {
    negative = first === 45;
    i++;
  }
  let mantissa = 0;
  let digits = 0;
  let fraction = 0;
  let seenDot = false;
  for (; i < end; i++) {
    const d = bytes[i] - ZERO;
    if (d >= 0 && d <= 9) {
      mantissa = mantissa * 10 + d;
      digits++;
      if (seenDot) fraction++;
    } else if (bytes[i] === 46 /* . */ && !seenDot) {
      seenDot = true;
    } else {
      return NaN;
    }
  }
  if (digits === 0 || digits > 15) return NaN;
  const v = fraction === 0 ? mantissa : mantissa / POW10[fraction];
  return negative ? -v : v;
}
