/**
 * Assembles workers/training/wasm-kernels.wat with wabt, for memory as tfjs-backend-wasm's
 * builds have it: plain, and shared (the threaded build). The test of the fused update checks
 * that workers/training/wasm-kernels-binary.ts holds these bytes; run as a script
 * (`npm run build:wasm`), this writes that file anew.
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
}

/** The two modules, base64. */
export async function assembleWasmKernels(): Promise<WasmKernelBinaries> {
  const source = await readFile(path.join(ROOT, SOURCE), 'utf8');
  if (!source.includes(PLAIN_MEMORY)) throw new Error(`${SOURCE} no longer imports its memory as ${PLAIN_MEMORY}`);
  const tools = await wabt();
  const features = { simd: true, threads: true };
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
  return { plain: assemble(source), shared: assemble(source.replace(PLAIN_MEMORY, SHARED_MEMORY)) };
}

/** The text of wasm-kernels-binary.ts for these binaries. */
export function binaryModuleText({ plain, shared }: WasmKernelBinaries): string {
  return [
    `/** wasm-kernels.wat assembled by \`npm run build:wasm\` (test/helpers/assemble-wasm.ts): do not edit. Base64; \`shared\` imports shared memory, for the threaded build. */`,
    `export const WASM_KERNELS = {`,
    `  plain: '${plain}',`,
    `  shared: '${shared}',`,
    `};`,
    ``,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(path.join(ROOT, TARGET), binaryModuleText(await assembleWasmKernels()));
  process.stdout.write(`wrote ${TARGET}\n`);
}
