import { readdirSync, readFileSync } from 'node:fs';

/** Child processes of `pid` whose command line contains `match`, from /proc (minimal Debian images have no ps). */
export function childProcesses(pid: number, match = ''): number[] {
  const kids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // the ppid is the second field after the command name, which is in parentheses and may hold spaces
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(match)) kids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return kids;
}

/**
 * Lists the children of `pid` matching `match` every 50 ms until stopped: every child alive
 * meanwhile (a training child lives at least the second it takes to load tfjs, so none is
 * missed). Not faster: each look reads every process's stat file (this kernel has no
 * /proc/PID/task/TID/children), ~3 ms of CPU with a hundred processes.
 */
export function watchChildren(pid: number, match = ''): { seen: Set<number>; stop(): Promise<Set<number>> } {
  const seen = new Set<number>();
  let watching = true;
  const loop = (async () => {
    while (watching) {
      for (const kid of childProcesses(pid, match)) seen.add(kid);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    seen,
    async stop() {
      watching = false;
      await loop;
      return seen;
    },
  };
}
