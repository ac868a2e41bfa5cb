/**
 * The rules of a job spec that its JSON schema does not express: what each job type needs
 * and refuses, which parameters go with which kind of architecture, optimizer, schedule,
 * strategy or method, and settings that could never train. Pure: no store, no I/O; the
 * checks that need datasets, models or DNS are in training-task.ts. The one home of these rules:
 * the API (on create and resume), reconciliation and the training child all ask specProblems.
 */
import type { FieldError } from '../field-error.js';
import { ARCHITECTURE_PARAMS, LR_SCHEDULE_PARAMS, OPTIMIZER_PARAMS, type JobSpec } from '../schemas/job.js';
import { METHOD_DEFAULTS, METHOD_PARAMS, STRATEGY_PARAMS } from '../schemas/methods.js';
import { MONITORS, type MonitorName } from './validators.js';

type Problem = (pointer: string, detail: string) => void;
type DataRole = keyof JobSpec['data'];

/** The data roles each job type reads; `required` must be present. */
const DATA_ROLES: Record<JobSpec['type'], { allowed: DataRole[]; required: DataRole[] }> = {
  train: { allowed: ['train', 'validation', 'test'], required: ['train'] },
  finetune: { allowed: ['train', 'validation', 'test'], required: ['train'] },
  domain_adaptation: { allowed: ['source', 'target', 'targetTest', 'sourceTest', 'validation', 'targetLabelled'], required: ['source'] },
  evaluate: { allowed: ['test'], required: ['test'] },
};

/** Where a role that does not belong to a job type is meant to go, when there is such a place. */
const ROLE_HINTS: Partial<Record<DataRole, string>> = {
  train: ' (a domain_adaptation job trains on data.source)',
  test: ' (a domain_adaptation job is tested on data.targetTest and data.sourceTest)',
};

/** Reports every parameter of `object` that is not `kind`/`name` and not listed for its kind. */
function onlyParams(object: object, pointer: string, allowed: readonly string[], what: string, problem: Problem, always: readonly string[] = []): void {
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined || key === 'kind' || key === 'name' || always.includes(key) || allowed.includes(key)) continue;
    problem(`${pointer}/${key}`, `does not apply to ${what}; it takes ${allowed.length > 0 ? allowed.join(', ') : 'no parameters'}`);
  }
}

/** Every rule the spec breaks, each as a pointer into the spec (a request body) and what was expected; none when it may run. */
export function specProblems(spec: JobSpec): FieldError[] {
  const problems: FieldError[] = [];
  checkSpec(spec, (pointer, detail) => problems.push({ pointer, in: 'body', detail }));
  return problems;
}

function checkSpec(spec: JobSpec, problem: Problem): void {
  const { type, model, method, strategy, hyperparameters: hp } = spec;
  const multiSource = method?.kind === 'multi_source';

  // What the model starts from.
  const basesOnly = 'applies to domain_adaptation with method multi_source only';
  if (type === 'train') {
    if (!model.architecture) problem('/model/architecture', 'is required for a train job');
    if (model.base) problem('/model/base', 'is not allowed for a train job (use type "finetune" to start from a model)');
    if (model.bases) problem('/model/bases', basesOnly);
  } else if (type === 'finetune' || type === 'evaluate') {
    if (!model.base) problem('/model/base', `is required for ${type === 'finetune' ? 'a finetune' : 'an evaluate'} job`);
    if (model.architecture) problem('/model/architecture', `is not allowed for ${type === 'finetune' ? 'a finetune job (the base model fixes it)' : 'an evaluate job (the base model is evaluated as it is)'}`);
    if (model.bases) problem('/model/bases', basesOnly);
  } else if (multiSource) {
    if (!model.bases) problem('/model/bases', 'is required for method multi_source: two or more models of one architecture');
    if (model.base) problem('/model/base', 'is not allowed with method multi_source (it starts from the mean of model.bases)');
    if (model.architecture) problem('/model/architecture', 'is not allowed with method multi_source (model.bases fix it)');
  } else {
    if (model.bases) problem('/model/bases', basesOnly);
    if (!model.base === !model.architecture) problem('/model', 'needs exactly one of base (a model to adapt) or architecture (a model trained from scratch on data.source)');
  }
  if (model.architecture) {
    const a = model.architecture;
    onlyParams(a, '/model/architecture', ARCHITECTURE_PARAMS[a.kind], `architecture ${a.kind}`, problem);
  }

  // How it is trained.
  if (strategy && type !== 'finetune') problem('/strategy', 'applies to finetune jobs only');
  if (strategy) onlyParams(strategy, '/strategy', STRATEGY_PARAMS[strategy.kind], `strategy ${strategy.kind}`, problem);
  if (type === 'domain_adaptation' && !method) problem('/method', `is required for a domain_adaptation job: one of ${Object.keys(METHOD_PARAMS).join(', ')}`);
  if (method && type !== 'domain_adaptation') problem('/method', 'applies to domain_adaptation jobs only');
  if (method) onlyParams(method, '/method', METHOD_PARAMS[method.kind], `method ${method.kind}`, problem);
  if (method?.kind === 'adabn' && model.architecture && model.architecture.batchNorm !== true) {
    problem('/model/architecture/batchNorm', 'must be true for method adabn, which recomputes the batch-norm statistics on the target domain');
  }

  // Which data it reads.
  const roles = DATA_ROLES[type];
  const required = type === 'domain_adaptation' && !multiSource ? [...roles.required, 'target' as const] : roles.required;
  for (const [role, value] of Object.entries(spec.data) as [DataRole, unknown][]) {
    if (value !== undefined && !roles.allowed.includes(role)) problem(`/data/${role}`, `is not used by a ${type} job${ROLE_HINTS[role] ?? ''}`);
  }
  for (const role of required) {
    if (spec.data[role] === undefined) problem(`/data/${role}`, `is required for ${type === 'evaluate' ? 'an evaluate job' : `a ${type} job`}${role === 'target' ? ` with method ${method?.kind}` : ''}`);
  }
  if (spec.data.targetLabelled && spec.data.target === undefined) problem('/data/targetLabelled', 'needs data.target');

  if (type === 'evaluate') {
    if (hp) problem('/hyperparameters', 'is not used by an evaluate job (nothing is trained)');
    if (spec.checkpoint) problem('/checkpoint', 'is not used by an evaluate job (nothing is trained)');
    return;
  }
  if (!hp) {
    problem('/hyperparameters', `is required for a ${type} job`);
    return;
  }
  const opt = hp.optimizer;
  onlyParams(opt, '/hyperparameters/optimizer', OPTIMIZER_PARAMS[opt.name], `optimizer ${opt.name}`, problem, ['learningRate']);
  if (hp.lrSchedule) {
    const s = hp.lrSchedule;
    onlyParams(s, '/hyperparameters/lrSchedule', LR_SCHEDULE_PARAMS[s.kind], `lrSchedule ${s.kind}`, problem);
    if (s.kind === 'step' && s.stepSize === undefined) problem('/hyperparameters/lrSchedule/stepSize', 'is required for a step schedule');
    if (s.kind === 'cosine' && s.minLearningRate !== undefined && s.minLearningRate > opt.learningRate) {
      problem('/hyperparameters/lrSchedule/minLearningRate', `is ${s.minLearningRate}, above the starting learningRate ${opt.learningRate}`);
    }
  }
  if (hp.earlyStopping) checkMonitor(spec, hp.earlyStopping.monitor, problem);
  if (hp.validatorSample !== undefined && (type !== 'domain_adaptation' || spec.data.target === undefined)) {
    problem('/hyperparameters/validatorSample', 'applies to domain_adaptation jobs with data.target only (the label-free validators read the target)');
  }
  checkPenaltyStability(spec, problem);
}

/** What the watched metric reads must be in the job, or it is never computed. */
function checkMonitor(spec: JobSpec, asked: MonitorName | undefined, problem: Problem): void {
  const monitor = asked ?? 'valLoss';
  const { needs } = MONITORS[monitor];
  const pointer = asked === undefined ? '/hyperparameters/earlyStopping' : '/hyperparameters/earlyStopping/monitor';
  if (needs.includes('target') && (spec.type !== 'domain_adaptation' || spec.data.target === undefined)) {
    problem(pointer, `watches ${monitor}, which is computed on the target's unlabelled data: it needs a domain_adaptation job with data.target`);
  }
  if (needs.includes('validation') && spec.data.validation === undefined) problem(pointer, `watches ${monitor}, which needs data.validation to watch`);
}

/** limits.maxRuntimeSeconds within the operator's maximum (JOB_MAX_RUNTIME_SECONDS); the worker host holds every attempt to it too. */
export function checkRuntimeLimit(spec: JobSpec, maxRuntimeSeconds: number, problem: Problem): void {
  const asked = spec.limits?.maxRuntimeSeconds;
  if (asked !== undefined && asked > maxRuntimeSeconds) {
    problem('/limits/maxRuntimeSeconds', `is ${asked}; expected at most ${maxRuntimeSeconds} (JOB_MAX_RUNTIME_SECONDS, the longest this service runs an attempt)`);
  }
}

/**
 * The quadratic pulls of l2sp and multi_source have curvature c (alpha, or bases/lambda).
 * Gradient descent with momentum m on such a term converges only when learningRate * c stays
 * below 2(1 + m) (heavy ball; (2 + 2m)/(1 + 2m) with Nesterov), and otherwise oscillates with
 * growing amplitude whatever the data. Adam and RMSProp normalise their steps and have no such bound.
 */
function checkPenaltyStability(spec: JobSpec, problem: Problem): void {
  const opt = spec.hyperparameters!.optimizer;
  if (opt.name !== 'sgd' && opt.name !== 'momentum') return;
  const lr = opt.learningRate;
  const m = opt.momentum ?? (opt.name === 'momentum' ? 0.9 : 0);
  const bound = opt.nesterov ? (2 + 2 * m) / (1 + 2 * m) : 2 * (1 + m);
  const setting = `with ${opt.name} at learningRate ${lr} and momentum ${m}`;
  const consequence = 'or gradient descent on the penalty overshoots and diverges; change it, lower the learning rate, or use adam';
  const round = (x: number) => +x.toPrecision(4);
  const { strategy, method } = spec;
  if (strategy?.kind === 'l2sp') {
    const weights = [{ name: 'alpha', value: strategy.alpha ?? METHOD_DEFAULTS.alpha }];
    if (strategy.newHead) weights.push({ name: 'beta', value: strategy.beta ?? METHOD_DEFAULTS.beta });
    for (const { name, value } of weights) {
      if (lr * value < bound) continue;
      problem(`/strategy/${name}`, `is ${value}: ${setting}, ${name} must stay below ${round(bound / lr)} (learningRate × ${name} < ${round(bound)}), ${consequence}`);
    }
  }
  if (method?.kind === 'multi_source' && spec.model.bases) {
    const lambda = method.lambda ?? METHOD_DEFAULTS.lambda;
    const bases = spec.model.bases.length;
    if ((lr * bases) / lambda >= bound) {
      problem(
        '/method/lambda',
        `is ${lambda}: ${setting} and ${bases} bases, lambda must be above ${round((lr * bases) / bound)} (learningRate × bases / lambda < ${round(bound)}), ${consequence}`,
      );
    }
  }
}
