/** Child processes of the benchmark: our measurements and the Python peers, each printing one JSON line. */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Runs a command to completion and parses the last line it printed as JSON; stderr is kept for the error. */
export function runJson<T>(command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0) {
        try {
          return resolve(JSON.parse(last) as T);
        } catch {
          // fall through: report what it printed
        }
      }
      reject(new ChildFailed(`${command} ${args.join(' ')} exited ${code}`, firstError(err) ?? last));
    });
  });
}

export class ChildFailed extends Error {
  constructor(
    message: string,
    /** the line of its output that says what went wrong */
    readonly reason: string,
  ) {
    super(`${message}: ${reason}`);
  }
}

/** The `Error: ...` line of a Node stack trace or the last line of a Python one. */
function firstError(stderr: string): string | undefined {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.find((l) => /^(\w*Error|Traceback)/.test(l) && !l.startsWith('Traceback')) ?? lines.pop();
}

/** `node dist/bench/<script>.js args...`, resolved next to this module. */
export function nodeScript(script: string): string {
  return fileURLToPath(new URL(`./${script}.js`, import.meta.url));
}

/**
 * The first Python that imports torch: BENCH_PYTHON if set, then the system python (Debian's
 * python3-torch lives there) and whatever python3 is on PATH (pyenv shims often lack torch).
 */
export function findTorchPython(): { python?: string; tried: string[] } {
  const candidates = [process.env.BENCH_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (probe.status === 0) return { python, tried: candidates };
  }
  return { tried: candidates };
}
