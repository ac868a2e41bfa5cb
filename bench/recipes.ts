/** What both sides of a throughput row train: the same networks, batch size and optimizer as bench/peers/*.py. */
import type { Architecture } from '../src/schemas/job.js';

export type BenchModel = 'mlp' | 'cnn';

export const SEED = 1;
export const BATCH_SIZE = 64;
export const LEARNING_RATE = 0.001;
export const MOMENTUM = 0.9;

export const ARCHITECTURES: Record<BenchModel, Architecture> = {
  mlp: { kind: 'mlp', hidden: [128], activation: 'linear' },
  cnn: { kind: 'cnn', filters: [16, 32], kernelSize: 3, pooling: 'max', hidden: [64], activation: 'relu' },
};

export const LABELS: Record<BenchModel, string> = {
  mlp: 'Seed MLP 784-128-10',
  cnn: 'Small CNN (16, 32 conv, 64 dense)',
};
