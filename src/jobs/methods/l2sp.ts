import { METHOD_DEFAULTS } from '../../schemas/params.js';
import { PLAIN, type MethodDescriptor } from './descriptor.js';
import { penaltyBound, round } from './penalty-stability.js';

/** L2-SP (strategy): every weight trained, pulled toward the base's (alpha) and new layers toward zero (beta). */
export const l2sp: MethodDescriptor = {
  ...PLAIN,
  checkTraining: ({ strategy }, hp, problem) => {
    const b = penaltyBound(hp);
    if (b === undefined || strategy === undefined) return;
    const weights = [{ name: 'alpha', value: strategy.alpha ?? METHOD_DEFAULTS.alpha }];
    if (strategy.newHead) weights.push({ name: 'beta', value: strategy.beta ?? METHOD_DEFAULTS.beta });
    for (const { name, value } of weights) {
      if (b.learningRate * value < b.bound) continue;
      problem(
        `/strategy/${name}`,
        `is ${value}: ${b.setting}, ${name} must stay below ${round(b.bound / b.learningRate)} (learningRate × ${name} < ${round(b.bound)}), ${b.consequence}`,
      );
    }
  },
};
