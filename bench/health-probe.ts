/**
 * Probes `GET <url>/health` every `intervalMs` from a process of its own, so that the latency it
 * sees is the service's and not that of whoever builds the attack payloads, until it gets
 * SIGTERM; then prints one JSON line of what it saw. Probes do not overlap: a slow answer delays
 * the next probe rather than stacking requests onto a blocked service.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProbeResult {
  probes: number;
  failures: number;
  p50: number;
  p99: number;
  max: number;
}

const [url, intervalArg] = process.argv.slice(2);
const intervalMs = Number(intervalArg ?? 100);
const ms: number[] = [];
let failures = 0;
let running = true;

process.on('SIGTERM', () => (running = false));

while (running) {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    if (res.status !== 200) failures++;
  } catch {
    failures++;
  }
  const took = performance.now() - t0;
  ms.push(took);
  await sleep(Math.max(0, intervalMs - took));
}

ms.sort((a, b) => a - b);
const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? NaN;
const result: ProbeResult = { probes: ms.length, failures, p50: at(0.5), p99: at(0.99), max: ms.at(-1) ?? NaN };
console.log(JSON.stringify(result));
