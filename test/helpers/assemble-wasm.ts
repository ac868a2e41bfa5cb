/**
 * Assembles workers/training/wasm-kernels.wat with wabt, for memory as tfjs-backend-wasm's
 * builds have it: plain, and shared (the threaded build); and each of those again with the
 * matrix product's multiply-adds fused (relaxed SIMD's f32x4.relaxed_madd: one rounding per term
 * where the CPU has FMA), for engines that validate it (Node 22; Node 20 does not without a flag).
 * The test of the fused update checks that workers/training/wasm-kernels-binary.ts holds these
 * bytes; run as a script (`npm run build:wasm`), this writes that file anew.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wabt from 'wabt';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SOURCE = 'workers/training/wasm-kernels.wat';
const TARGET = 'workers/training/wasm-kernels-binary.ts';
const PLAIN_MEMORY = '(import "env" "memory" (memory 1))';
const SHARED_MEMORY = '(import "env" "memory" (memory 1 65536 shared))';

export interface WasmKernelBinaries {
  plain: string;
  shared: string;
  plainFused: string;
  sharedFused: string;
}

/** A multiply-add of matMul's: a vector of sums plus a's value times a vector of b. */
const MULTIPLY_ADD =
  /\(f32x4\.add \(local\.get (\$s\d\d)\) \(f32x4\.mul \(local\.get \$v\) (\(local\.get \$b\d\)|\(v128\.load(?: offset=\d+)? \(local\.get \$pb\)\))\)\)/g;
/** matMul's multiply-adds: 8 in its blocks of 4 rows, 2 in the rows left over */
const MULTIPLY_ADDS = 10;

/** `source` with matMul's vector multiply-adds fused; its columns left over (scalar) stay as they are. */
function fuseProducts(source: string): string {
  const start = source.indexOf('(func (export "matMul")');
  const end = source.indexOf('(func', start + 1);
  if (start < 0 || end < 0) throw new Error(`${SOURCE} has no matMul function followed by another`);
  let count = 0;
  const fused = source.slice(start, end).replace(MULTIPLY_ADD, (_, sums: string, bVector: string) => {
    count++;
    return `(f32x4.relaxed_madd (local.get $v) ${bVector} (local.get ${sums}))`;
  });
  if (count !== MULTIPLY_ADDS)
    throw new Error(`${SOURCE}: matMul has ${count} vector multiply-adds of the form fuseProducts() rewrites; expected ${MULTIPLY_ADDS}`);
  return source.slice(0, start) + fused + source.slice(end);
}

/** The four modules, base64. */
export async function assembleWasmKernels(): Promise<WasmKernelBinaries> {
  const source = await readFile(path.join(ROOT, SOURCE), 'utf8');
  if (!source.includes(PLAIN_MEMORY)) throw new Error(`${SOURCE} no longer imports its memory as ${PLAIN_MEMORY}`);
  const tools = await wabt();
  const features = { simd: true, threads: true, relaxed_simd: true, bulk_memory: true };
  const assemble = (text: string) => {
    const module = tools.parseWat(SOURCE, text, features);
    try {
      // wabt validates with the features it is given here (its types leave the parameter out)
      (module.validate as (options: typeof features) => void)(features);
      return Buffer.from(module.toBinary({}).buffer).toString('base64');
    } finally {
      module.destroy();
    }
  };
  const shared = source.replace(PLAIN_MEMORY, SHARED_MEMORY);
  return { plain: assemble(source), shared: assemble(shared), plainFused: assemble(fuseProducts(source)), sharedFused: assemble(fuseProducts(shared)) };
}

/** The text of wasm-kernels-binary.ts for these binaries. */
export function binaryModuleText({ plain, shared, plainFused, sharedFused }: WasmKernelBinaries): string {
  return [
    `/** wasm-kernels.wat assembled by \`npm run build:wasm\` (test/helpers/assemble-wasm.ts): do not edit. Base64; \`shared\` imports shared memory, for the threaded build; \`Fused\`, matMul's multiply-adds fused (relaxed SIMD). */`,
    `export const WASM_KERNELS = {`,
    `  plain: '${plain}',`,
    `  shared: '${shared}',`,
    `  plainFused: '${plainFused}',`,
    `  sharedFused: '${sharedFused}',`,
    `};`,
    ``,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(path.join(ROOT, TARGET), binaryModuleText(await assembleWasmKernels()));
  process.stdout.write(`wrote ${TARGET}\n`);
}
