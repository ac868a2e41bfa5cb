/**
 * The API's memory while it ingests a large upload. Starts the service as its own process
 * (`node dist/src/server.js`, embedded defaults in a temp dir), generates a CSV or IDX upload of
 * the given size, streams it to POST /v1/datasets, and samples the service's RSS (VmRSS of
 * /proc/<pid>/status, all its threads, the conversion worker's included) from the upload's first
 * byte until the dataset is ready. It also times GET /health meanwhile: the event loop must stay
 * responsive while a worker thread converts.
 *
 *   npm run bench:ingest -- [--format csv|idx|both] [--mb 500]
 *
 * Fails (exit code 1) when RSS grows by 100 MB or more over the idle baseline, or the dataset
 * does not end ready. Linux only (it reads /proc).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/queue/redis-server.js';

const LIMIT_MB = 100;
const args = parseArgs({ options: { format: { type: 'string', default: 'both' }, mb: { type: 'string', default: '500' } } }).values;
const formats = args.format === 'both' ? ['csv', 'idx'] : [args.format];
const targetBytes = Number(args.mb) * 1024 * 1024;
if (!formats.every((f) => f === 'csv' || f === 'idx')) throw new Error(`--format is ${args.format}; expected csv, idx or both`);
if (!(targetBytes > 0)) throw new Error(`--mb is ${args.mb}; expected a positive number`);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const work = await mkdtemp(path.join(os.tmpdir(), 'tfjs-adapt-ingest-bench-'));
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** Writes through backpressure. */
async function write(out: NodeJS.WritableStream, chunk: string | Uint8Array) {
  if (!out.write(chunk)) await once(out, 'drain');
}

/** MNIST-shaped rows: a label and 784 pixel values, ~2.5 KB a row. */
async function generateCsv(file: string): Promise<number> {
  const out = createWriteStream(file);
  await write(out, ['label', ...Array.from({ length: 784 }, (_, i) => `p${i}`)].join(',') + '\n');
  const pool = Array.from({ length: 97 }, (_, r) => Array.from({ length: 784 }, (_, i) => ((r * 31 + i * 7) % 11 === 0 ? (r * i) % 256 : 0)).join(','));
  let bytes = 0;
  let rows = 0;
  while (bytes < targetBytes) {
    const line = `${rows % 10},${pool[rows % pool.length]}\n`;
    await write(out, line);
    bytes += line.length;
    rows++;
  }
  out.end();
  await once(out, 'finish');
  return rows;
}

/** An images/labels IDX pair of 28x28 bytes. */
async function generateIdx(images: string, labels: string): Promise<number> {
  const n = Math.ceil(targetBytes / 784);
  const header = (dims: number[], type = 0x08) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b[2] = type;
    b[3] = dims.length;
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  const img = createWriteStream(images);
  await write(img, header([n, 28, 28]));
  const block = Buffer.alloc(784 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  for (let done = 0; done < n; done += 1024) await write(img, block.subarray(0, Math.min(1024, n - done) * 784));
  img.end();
  await once(img, 'finish');
  const lab = createWriteStream(labels);
  await write(lab, header([n]));
  await write(lab, Buffer.from(Array.from({ length: n }, (_, i) => i % 10)));
  lab.end();
  await once(lab, 'finish');
  return n;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url);
  return res.json();
}

/** Streams files as multipart/form-data without reading them into memory. */
function postFiles(url: string, fields: Record<string, string>, files: Array<{ field: string; path: string }>): Promise<{ status: number; body: any }> {
  const boundary = `----bench${Date.now()}`;
  const parts: Array<string | { path: string }> = [];
  for (const [k, v] of Object.entries(fields)) parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  for (const f of files) {
    parts.push(
      `--${boundary}\r\nContent-Disposition: form-data; name="${f.field}"; filename="${path.basename(f.path)}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    parts.push({ path: f.path });
    parts.push('\r\n');
  }
  parts.push(`--${boundary}--\r\n`);
  const length = parts.reduce((n, p) => n + (typeof p === 'string' ? Buffer.byteLength(p) : statSync(p.path).size), 0);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': length } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    void (async () => {
      for (const p of parts) {
        if (typeof p === 'string') await write(req, p);
        else for await (const chunk of createReadStream(p.path, { highWaterMark: 1 << 20 })) await write(req, chunk as Buffer);
      }
      req.end();
    })().catch(reject);
  });
}

async function startService(): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(root, 'dist/src/server.js')], {
    env: { ...process.env, DATA_DIR: path.join(work, 'data'), PORT: String(port), LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (
      await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { child, url };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error('the service did not come up within 30 s');
}

async function waitReady(url: string, id: string): Promise<any> {
  for (;;) {
    const d = await getJson(`${url}/v1/datasets/${id}`);
    if (d.status !== 'validating') return d;
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Result {
  format: string;
  uploadBytes: number;
  examples: number;
  baseline: number;
  peak: number;
  uploadSeconds: number;
  convertSeconds: number;
  healthMaxMs: { upload: number; convert: number };
  ok: boolean;
}

async function run(format: string, url: string, pid: number): Promise<Result> {
  const files =
    format === 'csv'
      ? [{ field: 'file', path: path.join(work, 'big.csv') }]
      : [
          { field: 'images', path: path.join(work, 'images-idx3-ubyte') },
          { field: 'labels', path: path.join(work, 'labels-idx1-ubyte') },
        ];
  process.stdout.write(`${format}: generating ${mb(targetBytes)} ... `);
  const examples = format === 'csv' ? await generateCsv(files[0].path) : await generateIdx(files[0].path, files[1].path);
  const uploadBytes = files.reduce((n, f) => n + statSync(f.path).size, 0);
  console.log(`${mb(uploadBytes)}, ${examples} examples`);

  // warm up the upload path (multipart, worker thread, sharp) so the baseline includes its code
  const small = path.join(work, 'small.csv');
  await new Promise<void>((done) => createWriteStream(small).end('a,label\n1,x\n2,y\n', done));
  await waitReady(url, (await postFiles(`${url}/v1/datasets`, { name: 'warm-up', format: 'csv' }, [{ field: 'file', path: small }])).body.id);
  // the baseline is taken once RSS is steady (start-up leaves memory that is returned slowly),
  // as the highest reading of the last two seconds, so a falling RSS cannot hide growth
  const idle: number[] = [];
  for (let i = 0; i < 600; i++) {
    idle.push(rssOf(pid));
    await new Promise((r) => setTimeout(r, 100));
    const window = idle.slice(-20);
    if (window.length === 20 && Math.max(...window) - Math.min(...window) < 2 * 1024 * 1024) break;
  }
  idle.splice(0, idle.length - 20);
  const baseline = Math.max(...idle);

  let peak = baseline;
  const healthMaxMs = { upload: 0, convert: 0 };
  let phase: 'upload' | 'convert' = 'upload';
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, rssOf(pid));
      const t = performance.now();
      await fetch(`${url}/health`).then((r) => r.arrayBuffer());
      healthMaxMs[phase] = Math.max(healthMaxMs[phase], performance.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const t0 = performance.now();
  let res: { status: number; body: any };
  let done: any;
  let t1: number;
  try {
    res = await postFiles(`${url}/v1/datasets`, { name: `big-${format}`, format }, files);
    t1 = performance.now();
    phase = 'convert';
    if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${JSON.stringify(res.body)}`);
    done = await waitReady(url, res.body.id);
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
  }
  const t2 = performance.now();
  if (done.status !== 'ready') console.log(`  dataset ended ${done.status}: ${JSON.stringify(done.error)}`);
  await fetch(`${url}/v1/datasets/${res.body.id}`, { method: 'DELETE' });
  for (const f of files) await rm(f.path, { force: true });
  return {
    format,
    uploadBytes,
    examples,
    baseline,
    peak,
    uploadSeconds: (t1 - t0) / 1000,
    convertSeconds: (t2 - t1) / 1000,
    healthMaxMs,
    ok: done.status === 'ready' && done.numExamples === examples && peak - baseline < LIMIT_MB * 1024 * 1024,
  };
}

const { child, url } = await startService();
// a bench stopped by hand must not leave the service running
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    child.kill('SIGTERM');
    process.exit(130);
  });
}
const results: Result[] = [];
try {
  for (const format of formats) results.push(await run(format, url, child.pid!));
} finally {
  child.kill('SIGTERM');
  await once(child, 'exit');
  await rm(work, { recursive: true, force: true });
}
console.log('\nformat  upload      examples  upload s  convert s  RSS idle    RSS peak    growth     /health max (upload, convert)');
for (const r of results) {
  console.log(
    [
      r.format.padEnd(6),
      mb(r.uploadBytes).padStart(10),
      String(r.examples).padStart(9),
      r.uploadSeconds.toFixed(1).padStart(9),
      r.convertSeconds.toFixed(1).padStart(10),
      mb(r.baseline).padStart(10),
      mb(r.peak).padStart(10),
      mb(r.peak - r.baseline).padStart(9),
      `${r.healthMaxMs.upload.toFixed(0)} ms, ${r.healthMaxMs.convert.toFixed(0)} ms`.padStart(16),
      r.ok ? 'ok' : `FAIL (growth must stay under ${LIMIT_MB} MB and the dataset end ready)`,
    ].join('  '),
  );
}
process.exit(results.every((r) => r.ok) ? 0 : 1);
