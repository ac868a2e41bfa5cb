/** Runs check-child.js on a stored model directory and waits for its verdict. */
import { fork } from 'node:child_process';
import type { CheckAnswer } from './check-child.js';

const CHILD = new URL('./check-child.js', import.meta.url);
const TIMEOUT_MS = 120_000;

export function checkModel(dir: string): Promise<CheckAnswer> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [dir], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
    let stderr = '';
    let answer: CheckAnswer | undefined;
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.once('message', (m) => (answer = m as CheckAnswer));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (answer) resolve(answer);
      else reject(new Error(`the model check exited (${signal ?? `code ${code}`}) without an answer: ${stderr.trim()}`));
    });
  });
}
