import type { MethodDescriptor } from './descriptor.js';

/** AdaBN: trains on the source alone, then recomputes the batch-norm statistics on data.target. */
export const adabn: MethodDescriptor = {
  trainsOnTarget: false,
  needsTarget: true,
  check: ({ model }, problem) => {
    if (model.architecture && model.architecture.batchNorm !== true) {
      problem('/model/architecture/batchNorm', 'must be true for method adabn, which recomputes the batch-norm statistics on the target domain');
    }
  },
};
