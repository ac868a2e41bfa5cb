/**
 * Training throughput, ours versus PyTorch on the same recipe: each round runs our loop in a
 * fresh Node process and each peer configuration in a fresh Python process, alternating which
 * goes first, so drift in the machine's load hits both sides of a round alike.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MNIST_DIR } from './mnist.js';
import type { BenchModel } from './recipes.js';
import type { OursResult } from './ours.js';
import type { RooflineResult } from './roofline.js';
import { amdahlSamplesPerSecond, type StepParts } from './step-parts.js';
import { ChildFailed, nodeScript, runJson } from './processes.js';
import type { Row } from './report.js';
import { list, median, num } from './stats.js';

const PEERS_DIR = fileURLToPath(new URL('../../bench/peers/', import.meta.url));

interface PeerResult {
  samplesPerSecond: number;
  /** every epoch's samples/s */
  epochRates: number[];
  epochSeconds: number;
  loss: number;
  threads: number;
  torch: string;
  blas: string[];
}

export interface ThroughputPlan {
  model: BenchModel;
  label: string;
  examples: number;
  epochs: number;
  rounds: number;
  /** the ratio ours / PyTorch (1 thread) this row must reach, if any */
  target?: number;
  /** per PyTorch thread count other than the first, the ratio ours / PyTorch this row must reach, if any */
  moreTargets?: Partial<Record<number, number>>;
  /** TRAINING_THREADS of our side (1: tfjs's SIMD build without threads) */
  threads: number;
  /** what profiling found limits our side, said when the target is missed */
  why?: string;
  /** the roofline of our step with `threads` threads (bench/roofline.ts), cited when a target is missed */
  roofline?: RooflineResult;
  /** with more than one thread: the roofline on one, whose step parts give Amdahl's bound for `threads` */
  oneThread?: RooflineResult;
  /** PyTorch thread counts to run; the first is the like-for-like one the ratio and target use */
  peerThreads: number[];
}

export interface PeerConfig {
  python: string | undefined;
  /** why the peers are skipped, when python is undefined */
  skipped: string;
}

/** Torch's version and the BLAS it mapped, as the peers report them (for the versions section). */
export const peerVersions = new Set<string>();

function ours(plan: ThroughputPlan, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<OursResult> {
  const args = [nodeScript('ours'), '--model', plan.model, '--examples', String(plan.examples), '--epochs', String(plan.epochs), ...extra];
  return runJson<OursResult>(process.execPath, args, { TRAINING_THREADS: String(plan.threads), ...env });
}

async function peer(plan: ThroughputPlan, python: string, threads: number): Promise<PeerResult> {
  const result = await runJson<PeerResult>(
    python,
    [
      path.join(PEERS_DIR, `${plan.model}.py`),
      '--mnist-dir',
      MNIST_DIR,
      '--examples',
      String(plan.examples),
      '--epochs',
      String(plan.epochs),
      '--threads',
      String(threads),
    ],
    {},
    PEERS_DIR,
  );
  peerVersions.add(`PyTorch ${result.torch} with ${result.blas.join(' + ')} (BLAS libraries mapped into the peer process)`);
  return result;
}

/**
 * Rows: ours vs PyTorch with each thread count; the first row (1 thread: like for like with
 * single-threaded wasm) carries the target. Also our median, undefined when our side failed.
 */
export async function throughputRows(plan: ThroughputPlan, peers: PeerConfig, log: (s: string) => void): Promise<{ rows: Row[]; ours: number | undefined }> {
  const oursRuns: OursResult[] = [];
  const peerRuns = new Map<number, PeerResult[]>(plan.peerThreads.map((t) => [t, []]));
  let failure: string | undefined;
  const runOurs = async (round: number) => {
    if (failure !== undefined) return;
    try {
      const r = await ours(plan);
      oursRuns.push(r);
      log(`${plan.model} round ${round}: ours on ${plan.threads} thread(s) ${num(r.samplesPerSecond)} samples/s`);
    } catch (err) {
      if (!(err instanceof ChildFailed)) throw err;
      failure = err.reason;
      log(`${plan.model} round ${round}: ours failed: ${failure}`);
    }
  };
  const runPeers = async (round: number) => {
    if (peers.python === undefined) return;
    for (const threads of plan.peerThreads) {
      const r = await peer(plan, peers.python, threads);
      peerRuns.get(threads)!.push(r);
      log(`${plan.model} round ${round}: PyTorch ${threads} thread(s) ${num(r.samplesPerSecond)} samples/s`);
    }
  };
  for (let round = 1; round <= plan.rounds; round++) {
    // Who goes first alternates, so that neither side always runs on a machine the other just warmed or loaded.
    if (round % 2 === 1) {
      await runOurs(round);
      await runPeers(round);
    } else {
      await runPeers(round);
      await runOurs(round);
    }
  }

  const oursSps = oursRuns.map((r) => r.samplesPerSecond);
  const work = `${plan.examples} examples, timed epoch ${plan.epochs} of ${plan.epochs}`;
  const label = plan.threads > 1 ? `${plan.label}, ours on ${plan.threads} threads` : plan.label;
  const name = `${label}, samples/s`;
  const rows: Row[] = [];
  for (const threads of plan.peerThreads) {
    const peerSps = peerRuns.get(threads)!.map((r) => r.samplesPerSecond);
    const primary = threads === plan.peerThreads[0];
    const target = primary ? plan.target : plan.moreTargets?.[threads];
    const ratios = oursSps.length === peerSps.length ? oursSps.map((o, i) => o / peerSps[i]) : [];
    const row: Row = {
      name: primary ? name : `${label}, samples/s (PyTorch ${threads} threads)`,
      ours: failure !== undefined ? 'fails' : num(median(oursSps)),
      peer: peers.python === undefined ? 'PyTorch: skipped' : `PyTorch ${threads} thread${threads > 1 ? 's' : ''}: ${num(median(peerSps))}`,
      ratio: ratios.length > 0 ? `${num(median(ratios), 2)}x` : '-',
      target: target !== undefined ? `≥ ${target}x` : '-',
      status: 'info',
      note: '',
      details: [],
    };
    if (failure !== undefined) {
      row.status = 'failed';
      row.note = `our loop cannot train it on this backend: ${failure}`;
    } else if (peers.python === undefined) {
      row.status = 'skipped';
      row.note = peers.skipped;
    } else if (primary && target === undefined && plan.why !== undefined) {
      row.note = plan.why;
    } else if (target !== undefined) {
      const ratio = median(ratios);
      row.status = ratio >= target ? 'met' : 'missed';
      if (row.status === 'missed') {
        const peer = median(peerSps);
        const roof = plan.roofline
          ? ` ${rooflineNote(plan.roofline, peer, target, median(oursSps))} ${partsNote(plan.roofline, peer, target, plan.oneThread)}`
          : '';
        row.note = `at ${num(ratio, 2)}x, ${num((1 - ratio / target) * 100, 0)}% short of ${target}x. ${plan.why ?? ''}${roof}`.trim();
      }
    }
    if (primary) row.details.push(`workload: ${work}; ours per round: ${list(oursSps)}`);
    if (primary)
      row.details.push(
        `ours, each epoch's samples/s (median over rounds; the first epochs warm up): ${list(epochMedians(oursRuns.map((r) => r.epochRates ?? [])))}`,
      );
    if (peerSps.length > 0) row.details.push(`PyTorch ${threads} thread(s) per round: ${list(peerSps)}`);
    if (peerSps.length > 0)
      row.details.push(
        `PyTorch ${threads} thread(s), each epoch's samples/s (median over rounds): ${list(epochMedians(peerRuns.get(threads)!.map((r) => r.epochRates)))}`,
      );
    if (ratios.length > 0) row.details.push(`per-round ratios: ${list(ratios, (v) => num(v, 3))}`);
    if (threads !== plan.threads && target === undefined && peers.python !== undefined) {
      row.note = `PyTorch on ${threads} threads against ours on ${plan.threads} is not like for like, and on 2 cores with anything else running, OpenBLAS/OpenMP threads contend and can be slower than 1`;
    }
    if (primary || peers.python !== undefined) rows.push(row);
  }
  return { rows, ours: failure === undefined ? median(oursSps) : undefined };
}

/** Per epoch, the median over runs of that epoch's samples/s. */
function epochMedians(runs: number[][]): number[] {
  const epochs = Math.max(0, ...runs.map((r) => r.length));
  return Array.from({ length: epochs }, (_, e) => median(runs.flatMap((r) => (e < r.length ? [r[e]] : []))));
}

/** One run of stock `model.fit`, the starting point the issue measures our loop against. */
export async function stockFitRow(
  plan: ThroughputPlan,
  loop: number | undefined,
  log: (s: string) => void,
  env: NodeJS.ProcessEnv = {},
  backend = 'wasm',
): Promise<Row> {
  const row: Row = { name: `${plan.label}, stock model.fit on ${backend}`, ours: '', peer: '', ratio: '-', target: '-', status: 'info', note: '', details: [] };
  try {
    const r = await ours(plan, ['--fit'], env);
    log(`${plan.model} stock fit on ${backend}: ${num(r.samplesPerSecond)} samples/s`);
    row.ours = num(r.samplesPerSecond, r.samplesPerSecond < 10 ? 1 : 0);
    row.peer = loop === undefined ? '-' : `our loop on wasm: ${num(loop)}`;
    row.ratio = loop === undefined ? '-' : `loop is ${num(loop / r.samplesPerSecond, 1)}x fit`;
    row.details.push(`workload: ${plan.examples} examples, timed epoch ${plan.epochs} of ${plan.epochs}, one run: ${num(r.samplesPerSecond, 2)} samples/s`);
  } catch (err) {
    if (!(err instanceof ChildFailed)) throw err;
    row.ours = 'fails';
    row.status = 'failed';
    row.note = err.reason;
  }
  return row;
}

/** The roofline of `model`'s step with each of `threads`, each in a fresh process (bench/roofline.ts). */
export async function rooflines(model: BenchModel, threads: number[], log: (s: string) => void): Promise<Map<number, RooflineResult>> {
  const found = new Map<number, RooflineResult>();
  for (const t of threads) {
    const r = await runJson<RooflineResult>(process.execPath, [nodeScript('roofline'), '--model', model, '--threads', String(t)]);
    log(`${model} roofline on ${t} thread(s): best product ${num(r.bestGflops, 1)} GFLOP/s, bound ${num(r.boundSamplesPerSecond)} samples/s`);
    found.set(t, r);
  }
  return found;
}

/** What the roofline says of a missed target: how far the products alone would let ours go against the peer's median. */
function rooflineNote(roof: RooflineResult, peer: number, target: number, ours: number): string {
  const bound = roof.boundSamplesPerSecond / peer;
  const verdict =
    bound < target
      ? `below ${target}x even if the whole step ran at the best product's speed: out of reach on wasm on this machine`
      : `so the products leave room: the rest of our step (${num((1 - ours / roof.productsSamplesPerSecond) * 100, 0)}% of it besides the products at their measured speeds) is what falls short`;
  return (
    `Roofline (bench/roofline.ts, ${roof.threads} thread${roof.threads > 1 ? 's' : ''}): the best product of this step (XNNPACK's or our kernel's) runs at ${num(roof.bestGflops, 1)} GFLOP/s here; ` +
    `the step's ${num(roof.stepMflop, 1)} MFLOP of products at that speed bound ours at ${num(roof.boundSamplesPerSecond)} samples/s, ${num(bound, 2)}x PyTorch's median, ` +
    `${verdict}; each product at its own measured speed allows ${num(roof.productsSamplesPerSecond)} samples/s (${num(roof.productsSamplesPerSecond / peer, 2)}x).`
  );
}

const ms = (v: number) => `${num(v, 2)} ms`;

/** The step's time besides its products, ours and XNNPACK's. */
const besidesProducts = (p: StepParts) => p.stepMs - p.parallelMs - p.ownProductsMs;

/** A step's parts in words: the products, and what stays on the calling thread. */
function describeParts(p: StepParts): string {
  const kernels = Object.entries(p.serialKernelsMs)
    .map(([k, v]) => `${k} ${ms(v)}`)
    .join(', ');
  const besides = besidesProducts(p);
  return (
    `a step takes ${ms(p.stepMs)} on ${p.threads} thread${p.threads > 1 ? 's' : ''}: the products ${ms(p.parallelMs + p.ownProductsMs)} ` +
    `(our kernel's, for dense layers, on the calling thread: ${ms(p.ownProductsMs)}; XNNPACK's, on its threads: ${ms(p.parallelMs)}), and besides them ${ms(besides)} ` +
    `(${num((besides / p.stepMs) * 100, 0)}%, the calling thread's work: batch filling ${ms(p.fillMs)}, other tfjs kernels ${kernels || 'none'} (small elementwise ones, which XNNPACK may split too), ` +
    `the rest, tfjs's JavaScript around the kernels with our other WASM kernels and the loss on the host, ${ms(p.restMs)})`
  );
}

/**
 * What the step's parts say of a missed target: the calling thread's share alone bounds the step
 * however fast the products get, and Amdahl's law, from the one-thread step's split, bounds what
 * more threads can give.
 */
function partsNote(roof: RooflineResult, peer: number, target: number, oneThread: RooflineResult | undefined): string {
  const p = roof.parts;
  const serialBound = (roof.batch * 1000) / besidesProducts(p);
  let note =
    `Step parts (bench/step-parts.ts, wall time over ${p.steps} steps): ${describeParts(p)}; ` +
    `with products that took no time at all, the rest alone would allow ${num(serialBound)} samples/s, ${num(serialBound / peer, 2)}x PyTorch's median.`;
  if (oneThread !== undefined && roof.threads > 1) {
    const one = oneThread.parts;
    const repack = oneThread.repackMsPerStep;
    const ideal = amdahlSamplesPerSecond(one, { speedup: roof.threads, serialProductsMs: repack });
    // the products' own speed-up on this machine, back to back on fixed operands: what its cores give XNNPACK's pool
    const measured = roof.productsSamplesPerSecond / oneThread.productsSamplesPerSecond;
    const bound = amdahlSamplesPerSecond(one, { speedup: Math.min(measured, roof.threads), serialProductsMs: repack });
    note +=
      ` Amdahl, from the one-thread step (${ms(one.stepMs)}: ${ms(one.singleThreadedMs)} on the calling thread, our products included, and XNNPACK's products ${ms(one.parallelMs)}, of which ${ms(repack)} ` +
      `XNNPACK packing their operands anew on the calling thread, as tfjs-backend-wasm keeps a packed copy by data id and the step's operands are new at every step, measured by the roofline with new and kept operands): ` +
      `with the rest of XNNPACK's products divided by ${roof.threads}, ${num(ideal)} samples/s, ${num(ideal / peer, 2)}x PyTorch's median; divided by the ${num(measured, 2)}x the products themselves ` +
      `gained on ${roof.threads} threads here (back to back, kept operands: what this machine's cores give the pool), ${num(bound)} samples/s, ${num(bound / peer, 2)}x` +
      (bound / peer < target ? `: ${target}x is out of reach on this machine until work leaves the calling thread.` : `: ${target}x is within that bound.`) +
      (p.parallelMs > 0
        ? ` In the step, XNNPACK's products ran ${num(one.parallelMs / p.parallelMs, 2)}x as fast on ${roof.threads} threads as on one, the packing included.`
        : '');
  }
  return note;
}

/** The roofline as an information row: the bound in samples/s on each thread count, and the kernels of one step. */
export function rooflineRow(label: string, roofs: Map<number, RooflineResult>): Row {
  const [first, ...more] = [...roofs.values()];
  const row: Row = {
    name: `${label}, roofline: products at the best product's speed, samples/s`,
    ours: first ? `${num(first.boundSamplesPerSecond)} (${first.threads} thread${first.threads > 1 ? 's' : ''})` : '-',
    peer: more.map((r) => `${r.threads} threads: ${num(r.boundSamplesPerSecond)}`).join('; ') || '-',
    ratio: '-',
    target: '-',
    status: 'info',
    note: '',
    details: [],
  };
  for (const r of roofs.values()) {
    row.details.push(
      `${r.threads} thread(s), where the step's time goes (bench/step-parts.ts, wall time over ${r.parts.steps} steps): ${describeParts(r.parts)}`,
    );
    row.details.push(
      `${r.threads} thread(s): step ${num(r.stepMflop, 1)} MFLOP of products (batch ${r.batch}); best ${num(r.bestGflops, 2)} GFLOP/s; ` +
        `each product at its own speed: ${num(r.productsSamplesPerSecond)} samples/s; packing new operands, on the calling thread: ${ms(r.repackMsPerStep)} a step; ` +
        r.products.map((p) => `${p.layer} ${p.role} ${p.name}: ${num(p.gflops, 2)} GFLOP/s, ${ms(p.repackMs)} more with it new`).join(', '),
    );
  }
  if (first) {
    const byName = Object.entries(first.kernels)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    row.details.push(
      `kernels of one step: ${first.kernelsPerStep} (${byName}); with tfjs's own momentum update instead of the fused one: ${first.kernelsPerStepTfjsUpdate}`,
    );
  }
  return row;
}
