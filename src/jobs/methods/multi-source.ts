import { METHOD_DEFAULTS } from '../../schemas/params.js';
import type { MethodDescriptor } from './descriptor.js';
import { penaltyBound, round } from './penalty-stability.js';

/**
 * multi_source (the seed's objective): starts from the mean of model.bases, trained on other
 * domains, and pulls toward them; it reads no target data.
 */
export const multiSource: MethodDescriptor = {
  trainsOnTarget: false,
  needsTarget: false,
  checkModel: (model, problem) => {
    if (!model.bases) problem('/model/bases', 'is required for method multi_source: two or more models of one architecture');
    if (model.base) problem('/model/base', 'is not allowed with method multi_source (it starts from the mean of model.bases)');
    if (model.architecture) problem('/model/architecture', 'is not allowed with method multi_source (model.bases fix it)');
  },
  checkTraining: ({ method, model }, hp, problem) => {
    const b = penaltyBound(hp);
    if (b === undefined || model.bases === undefined) return;
    const lambda = method?.lambda ?? METHOD_DEFAULTS.lambda;
    const bases = model.bases.length;
    if ((b.learningRate * bases) / lambda < b.bound) return;
    problem(
      '/method/lambda',
      `is ${lambda}: ${b.setting} and ${bases} bases, lambda must be above ${round((b.learningRate * bases) / b.bound)} (learningRate × bases / lambda < ${round(b.bound)}), ${b.consequence}`,
    );
  },
};
