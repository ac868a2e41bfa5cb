/** The benchmark's table, for the terminal and for docs/performance.md. */
import { measured, OTHER_CORES_LIMIT, STEAL_LIMIT, type MachineUse } from './machine.js';

/** 'not judged': the row has a target, but the machine was busy while it was measured (bench/machine.ts). */
export type Status = 'met' | 'missed' | 'not judged' | 'info' | 'skipped' | 'failed';

export interface Row {
  /** what is measured, with its unit */
  name: string;
  ours: string;
  /** what it is compared with, named (a PyTorch configuration, the bare loop, one job) */
  peer: string;
  ratio: string;
  target: string;
  status: Status;
  /** by how much a target is missed and why, or what a skipped row needs */
  note: string;
  /** every sample behind the medians, for the details section */
  details: string[];
}

/**
 * Adds how the machine was used while `rows` were measured to their details, and withholds the
 * verdict of each row with a target when it was busy: its figures stay, as measured.
 */
export function judge(rows: Row[], use: MachineUse): Row[] {
  for (const row of rows) {
    row.details.push(`machine while measured: ${use.summary}${use.busy ? ' (busy)' : ''}`);
    if (use.busy && (row.status === 'met' || row.status === 'missed')) {
      row.note = `machine busy (${use.summary}): would be ${row.status} on these figures, which are as measured. ${row.note}`.trim();
      row.status = 'not judged';
    }
  }
  return rows;
}

/** Measures rows and judges them by how the machine was used meanwhile. */
export async function judged(measure: () => Promise<Row[]>): Promise<Row[]> {
  const { result, use } = await measured(measure);
  return judge(result, use);
}

const COLUMNS: Array<[string, (r: Row) => string]> = [
  ['measure', (r) => r.name],
  ['ours', (r) => r.ours],
  ['compared with', (r) => r.peer],
  ['ratio', (r) => r.ratio],
  ['target', (r) => r.target],
  ['status', (r) => r.status],
];

export function textTable(rows: Row[]): string {
  const cells = [COLUMNS.map(([h]) => h), ...rows.map((r) => COLUMNS.map(([, get]) => get(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const escape = (s: string) => s.replace(/\|/g, '\\|');

export function markdownTable(rows: Row[]): string {
  return [
    `| ${COLUMNS.map(([h]) => h).join(' | ')} |`,
    `| ${COLUMNS.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${COLUMNS.map(([, get]) => escape(get(r))).join(' | ')} |`),
  ].join('\n');
}

export interface Environment {
  command: string;
  date: string;
  mode: 'full' | 'quick';
  durationSeconds: number;
  machine: string[];
  versions: string[];
  /** 1-minute load average when the benchmark started and ended: other work on the machine skews every figure */
  load: [number, number];
}

export function markdownReport(rows: Row[], env: Environment, method: string[]): string {
  const notes = rows.filter((r) => r.note !== '');
  return [
    '# Performance',
    '',
    `Written by \`${env.command}\` on ${env.date} (${env.mode} run, ${Math.round(env.durationSeconds)} s). ` +
      'Each figure is a median over alternating runs of ours and its peer in the same invocation; ratios are medians of the per-round ratios.',
    '',
    markdownTable(rows),
    '',
    '## Notes: targets missed, rows skipped or failed, and why',
    '',
    ...(notes.length === 0 ? ['Every target is met.'] : notes.map((r) => `- **${r.name}** (${r.status}): ${r.note}`)),
    '',
    '## Machine',
    '',
    ...env.machine.map((m) => `- ${m}`),
    `- load average (1 min) at start and end: ${env.load[0].toFixed(2)}, ${env.load[1].toFixed(2)}; a row measured while other processes kept more than ${OTHER_CORES_LIMIT} of a core busy or the hypervisor stole more than ${STEAL_LIMIT * 100}% is "not judged" (bench/machine.ts; each row's details say what the machine did meanwhile)`,
    '',
    '## Versions',
    '',
    ...env.versions.map((v) => `- ${v}`),
    '',
    '## How each row is measured',
    '',
    ...method.map((m) => `- ${m}`),
    '',
    '## Every sample',
    '',
    ...rows.flatMap((r) => (r.details.length === 0 ? [] : [`### ${r.name}`, '', ...r.details.map((d) => `- ${d}`), ''])),
  ].join('\n');
}
