/** Human formatting shared by the commands: numbers, metric lists, tables. */

export function num(v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}

/** `loss 0.3412  accuracy 0.9021 ...`: the numeric figures in a stable order, the familiar ones first. */
export function metricList(metrics: Record<string, unknown>, skip: string[] = []): string {
  const first = ['loss', 'accuracy', 'valLoss', 'valAccuracy', 'testLoss', 'testAccuracy'];
  const keys = Object.keys(metrics).filter((k) => !skip.includes(k) && typeof metrics[k] === 'number');
  keys.sort((a, b) => (first.includes(a) ? first.indexOf(a) : 99) - (first.includes(b) ? first.indexOf(b) : 99) || a.localeCompare(b));
  return keys.map((k) => `${k} ${num(metrics[k])}`).join('  ');
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** `per-class accuracy  0 0.958  1 0.951 ...` when the result has one, else null. */
export function perClass(metrics: Record<string, unknown>): string | null {
  const acc = metrics.perClassAccuracy;
  const classes = metrics.classes;
  if (!Array.isArray(acc) || !Array.isArray(classes) || acc.length !== classes.length) return null;
  return `per-class accuracy  ${classes.map((c, i) => `${String(c)} ${num(acc[i])}`).join('  ')}`;
}
