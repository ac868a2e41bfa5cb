/**
 * Whether the machine was free while a row was measured. A figure taken while other processes
 * ran says little about either side (PyTorch's BLAS suffers far more from a busy core than our
 * single-threaded wasm step), so a row measured then is not judged against its target.
 *
 * Read from /proc (Linux), not from the load average alone: the load average also counts this
 * benchmark's own runs of a minute ago, and cannot tell our processes from others. Over a row,
 * /proc/stat gives the CPU time every core spent busy and stolen (by the hypervisor), and
 * /proc/<pid>/stat the CPU time of this process and its descendants (the runs it measures, the
 * service and its training children); the difference is what other processes took.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { num } from './stats.js';

/** More than this many cores of other work on average over a row: busy. */
export const OTHER_CORES_LIMIT = 0.2;
/** More than this share of the machine's time stolen by the hypervisor: busy. */
export const STEAL_LIMIT = 0.03;

export interface MachineSample {
  at: number;
  load1: number;
  /** clock ticks over all cores since boot */
  busy: number;
  steal: number;
  total: number;
  /** clock ticks of this process and its descendants, the reaped ones included */
  ours: number;
}

export interface MachineUse {
  loadBefore: number;
  loadAfter: number;
  /** share of the machine's time stolen */
  steal: number;
  /** cores other processes kept busy, on average */
  otherCores: number;
  busy: boolean;
  /** the figures in a few words, for notes and details */
  summary: string;
}

/** utime + stime + cutime + cstime of a process, in clock ticks (fields 14-17 of /proc/<pid>/stat). */
function processTicks(pid: number | 'self'): { ppid: number; ticks: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name is in parentheses and may hold spaces: count fields after it
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0);
  return { ppid: Number(fields[1]), ticks };
}

/** Ticks of this process (with the children it reaped) and of its live descendants. */
function ourTicks(): number {
  const parents = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const p = processTicks(Number(entry));
      parents.set(Number(entry), p.ppid);
      ticks.set(Number(entry), p.ticks);
    } catch {
      // the process ended while we looked
    }
  }
  const ours = (pid: number): boolean => {
    for (let at = parents.get(pid); at !== undefined && at > 1; at = parents.get(at)) if (at === process.pid) return true;
    return false;
  };
  let total = processTicks('self').ticks;
  for (const [pid, t] of ticks) if (ours(pid)) total += t;
  return total;
}

export function sampleMachine(): MachineSample {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = cpu as [number, number, number, number, number, number, number, number];
  return {
    at: performance.now(),
    load1: os.loadavg()[0],
    busy: user + nice + system + irq + softirq,
    steal,
    total: user + nice + system + idle + iowait + irq + softirq + steal,
    ours: ourTicks(),
  };
}

export function machineUse(before: MachineSample, after: MachineSample): MachineUse {
  const total = Math.max(after.total - before.total, 1);
  const cores = os.cpus().length;
  const steal = (after.steal - before.steal) / total;
  const otherTicks = Math.max(0, after.busy - before.busy - (after.ours - before.ours));
  const otherCores = (otherTicks / total) * cores;
  const busy = otherCores > OTHER_CORES_LIMIT || steal > STEAL_LIMIT;
  const summary =
    `load ${num(before.load1, 2)} before, ${num(after.load1, 2)} after; steal ${num(steal * 100, 1)}%; ` +
    `other processes ${num(otherCores, 2)} cores on average over ${num((after.at - before.at) / 1000, 0)} s`;
  return { loadBefore: before.load1, loadAfter: after.load1, steal, otherCores, busy, summary };
}

/** Runs `measure` and reports how the machine was used meanwhile. */
export async function measured<T>(measure: () => Promise<T>): Promise<{ result: T; use: MachineUse }> {
  const before = sampleMachine();
  const result = await measure();
  return { result, use: machineUse(before, sampleMachine()) };
}

/**
 * The widest x86 vector extension the CPU has (/proc/cpuinfo's flags). The peer's OpenBLAS uses it
 * and wasm SIMD is 128 bits wide whatever it is, so it moves the ratios: on two hosts that both
 * said "AMD EPYC", PyTorch's seed MLP ran 43,600 samples/s on one and 101,600 on the other (with
 * AVX-512), ours 22,500 and 33,500 (docs/performance.md's history).
 */
export function vectorExtension(): string {
  let flags: Set<string>;
  try {
    flags = new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return 'vector extensions unknown (no /proc/cpuinfo)';
  }
  // ARM's /proc/cpuinfo says "Features", not "flags": no x86 extension to name
  if (flags.size === 0) return 'vector extensions unknown (no x86 flags in /proc/cpuinfo)';
  const widest = flags.has('avx512f') ? 'AVX-512' : flags.has('avx2') ? 'AVX2' : flags.has('avx') ? 'AVX' : 'no AVX';
  return `${widest} (the peer's OpenBLAS uses it; wasm SIMD is 128 bits wide)`;
}
