/**
 * Which parameters each architecture, optimizer, learning-rate schedule, strategy and method
 * takes besides its kind, and the methods' defaults: plain data, read by the schemas (job.ts,
 * methods.ts), the API's spec rules and the training child alike. Kept apart from the TypeBox
 * schemas so the training child loads none of TypeBox (~0.19 s of CPU at every child's start).
 */

/** Parameters each architecture takes besides `kind` (the API rejects the others). */
export const ARCHITECTURE_PARAMS = {
  mlp: ['hidden', 'activation', 'batchNorm'],
  cnn: ['hidden', 'activation', 'batchNorm', 'filters', 'kernelSize', 'pooling'],
} as const;

/** Parameters each optimizer takes besides `name` and `learningRate` (the API rejects the others). */
export const OPTIMIZER_PARAMS = {
  sgd: ['momentum'],
  momentum: ['momentum', 'nesterov'],
  adam: ['beta1', 'beta2', 'epsilon'],
  rmsprop: ['decay', 'momentum', 'epsilon', 'centered'],
} as const;

export const LR_SCHEDULE_PARAMS = {
  step: ['stepSize', 'gamma'],
  cosine: ['minLearningRate'],
} as const;

/** Parameters each strategy takes besides `kind`; `newHead` goes with every strategy. */
export const STRATEGY_PARAMS = {
  full: ['newHead', 'featureLayer', 'head'],
  freeze: ['newHead', 'featureLayer', 'head', 'trainableLayers', 'trainFrom'],
  l2sp: ['newHead', 'featureLayer', 'head', 'alpha', 'beta'],
} as const;
export type StrategyKind = keyof typeof STRATEGY_PARAMS;

/** Parameters each domain-adaptation method takes besides `kind`. */
export const METHOD_PARAMS = {
  multi_source: ['lambda'],
  dann: ['weight', 'featureLayer', 'gamma', 'hiddenUnits'],
  coral: ['weight', 'featureLayer'],
  mmd: ['weight', 'featureLayer', 'kernels', 'kernelMultiplier'],
  adabn: [],
  pseudo_label: ['weight', 'threshold'],
  cdan: ['weight', 'featureLayer', 'gamma', 'hiddenUnits', 'entropyConditioning'],
  mcc: ['weight', 'temperature'],
} as const;
export type MethodKind = keyof typeof METHOD_PARAMS;

/** Defaults of the parameters above, in one place for the worker and the API's checks. */
export const METHOD_DEFAULTS = {
  alpha: 0.01,
  beta: 0.01,
  trainableLayers: 1,
  lambda: 100,
  weight: 1,
  gamma: 10,
  hiddenUnits: 100,
  kernels: 5,
  kernelMultiplier: 2,
  threshold: 0.9,
  entropyConditioning: true,
  temperature: 2.5,
} as const;
