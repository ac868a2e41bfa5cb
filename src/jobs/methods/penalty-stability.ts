import type { Hyperparameters } from '../../schemas/job.js';

/**
 * The quadratic pulls of l2sp and multi_source have curvature c (alpha, or bases/lambda).
 * Gradient descent with momentum m on such a term converges only when learningRate * c stays
 * below 2(1 + m) (heavy ball; (2 + 2m)/(1 + 2m) with Nesterov), and otherwise oscillates with
 * growing amplitude whatever the data. Adam and RMSProp normalise their steps and have no such bound.
 */
export interface PenaltyBound {
  learningRate: number;
  /** learningRate * c must stay below this */
  bound: number;
  /** the optimizer's setting, for messages */
  setting: string;
  /** what happens otherwise and what to do, for messages */
  consequence: string;
}

/** The bound of the optimizer of `hp`; undefined for an optimizer without one. */
export function penaltyBound(hp: Hyperparameters): PenaltyBound | undefined {
  const opt = hp.optimizer;
  if (opt.name !== 'sgd' && opt.name !== 'momentum') return undefined;
  const m = opt.momentum ?? (opt.name === 'momentum' ? 0.9 : 0);
  return {
    learningRate: opt.learningRate,
    bound: opt.nesterov ? (2 + 2 * m) / (1 + 2 * m) : 2 * (1 + m),
    setting: `with ${opt.name} at learningRate ${opt.learningRate} and momentum ${m}`,
    consequence: 'or gradient descent on the penalty overshoots and diverges; change it, lower the learning rate, or use adam',
  };
}

/** Four significant digits, for messages. */
export const round = (x: number) => +x.toPrecision(4);
