/**
 * The `errorBound` validator (src/jobs/validators.ts): Ben-David et al.'s bound on the target
 * error, ε_T ≤ ε_S + ½ d_HΔH(S, T) + λ ("A theory of learning from different domains", Machine
 * Learning 2010, theorem 2), with its two measurable terms: the source validation error, and
 * half the proxy A-distance of the feature layer, ½ · 2(1 − 2 ε_D) = 2 acc_D − 1, where acc_D is
 * the cross-validated accuracy of a linear domain classifier on those features (`linearDomainAccuracy`,
 * workers/training/validators.ts; Ben-David et al. 2007 and Ganin et al. 2016, who report it for
 * DANN's features, use a linear classifier too). λ, the
 * error of the best joint classifier, needs target labels and is left out: a method that aligns
 * the features but mixes the classes across domains is not caught by this bound.
 *
 * Pure and tfjs-free: the training loop computes it from an epoch's metrics.
 */

/** The bound's measured part from an epoch's `valAccuracy` and `linearDomainAccuracy`, or undefined when either is missing. */
export function errorBound(metrics: { valAccuracy?: number; linearDomainAccuracy?: number }): number | undefined {
  const { valAccuracy, linearDomainAccuracy } = metrics;
  if (valAccuracy === undefined || linearDomainAccuracy === undefined) return undefined;
  // A classifier below chance is no evidence of a distance: the proxy A-distance is floored at 0.
  return 1 - valAccuracy + Math.max(0, 2 * linearDomainAccuracy - 1);
}

/**
 * The standard error of the bound's source term: the binomial standard error of the error on
 * data.validation's `rows` examples, √(e(1 − e)/rows). The domain term, cross-validated over both
 * samples (2 × validatorSample rows), is left out. A sweep on errorBound picks among the trials
 * within one of these of the best (src/sweeps/selection.ts).
 */
export function errorBoundStandardError(valAccuracy: number, rows: number): number {
  const error = 1 - valAccuracy;
  return Math.sqrt((error * (1 - error)) / rows);
}
