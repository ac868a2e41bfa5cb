/** Small statistics and formatting shared by the benchmark rows. */

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/** Linear interpolation between the closest ranks; q in [0, 1]. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** 12345.6 -> "12,346"; small values keep some digits. */
export function num(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return String(value);
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export function ms(seconds: number): string {
  return `${num(seconds * 1000, seconds < 0.01 ? 1 : 0)} ms`;
}

export function pct(fraction: number): string {
  return `${fraction >= 0 ? '+' : ''}${num(fraction * 100, 1)}%`;
}

export function list(values: number[], format: (v: number) => string = (v) => num(v)): string {
  return values.map(format).join(', ');
}
