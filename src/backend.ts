import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function resolves(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/**
 * The backend a training child will pick, by the rule of workers/training/backend.ts, told
 * without loading TensorFlow.js (the API never does): tfjs-node counts only when its
 * native binding was installed.
 */
export function expectedBackend(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TFJS_BACKEND) return env.TFJS_BACKEND;
  if (resolves('@tensorflow/tfjs-node') && resolves('@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node')) return 'tensorflow';
  if (resolves('@tensorflow/tfjs-backend-wasm')) return 'wasm';
  return 'cpu';
}
