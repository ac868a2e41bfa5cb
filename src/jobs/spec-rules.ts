/**
 * The rules of a job spec that its JSON schema does not express: what each job type needs
 * and refuses, which parameters go with which kind of architecture, optimizer, schedule,
 * strategy or method, and settings that could never train. Pure: no store, no I/O; the
 * checks that need datasets, models or DNS are in training-task.ts. The one home of these rules:
 * the API (on create and resume), reconciliation and the training child all ask specProblems.
 */
import type { FieldError } from '../field-error.js';
import type { Augment } from '../schemas/augment.js';
import { changesAnything } from './augmentation.js';
import type { JobSpec } from '../schemas/job.js';
import { ARCHITECTURE_PARAMS, LR_SCHEDULE_PARAMS, METHOD_PARAMS, OPTIMIZER_PARAMS, STRATEGY_PARAMS } from '../schemas/params.js';
import type { Problem } from './methods/descriptor.js';
import { METHOD_DESCRIPTORS, methodOf, TARGET_TRAINING_KINDS } from './methods/registry.js';
import { MONITORS, type MonitorName } from './validators.js';

type DataRole = keyof JobSpec['data'];

/** The data roles each job type reads; `required` must be present. */
const DATA_ROLES: Record<JobSpec['type'], { allowed: DataRole[]; required: DataRole[] }> = {
  train: { allowed: ['train', 'validation', 'test'], required: ['train'] },
  finetune: { allowed: ['train', 'validation', 'test'], required: ['train'] },
  domain_adaptation: { allowed: ['source', 'target', 'targetTest', 'sourceTest', 'validation', 'targetLabelled'], required: ['source'] },
  evaluate: { allowed: ['test'], required: ['test'] },
  predict: { allowed: ['input'], required: ['input'] },
};

/** Where a role that does not belong to a job type is meant to go, when there is such a place. */
const ROLE_HINTS: Partial<Record<DataRole, string>> = {
  train: ' (a domain_adaptation job trains on data.source)',
  test: ' (a domain_adaptation job is tested on data.targetTest and data.sourceTest; a predict job reads data.input)',
  input: ' (data.input is the examples of a predict job)',
};

/** "an evaluate", "a predict": a job type with its article. */
const article = (type: JobSpec['type']) => `${type === 'evaluate' ? 'an' : 'a'} ${type}`;

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
  // the method's own rules (methods/): undefined where the job type takes no method
  const own = type === 'domain_adaptation' && method ? METHOD_DESCRIPTORS[method.kind] : type === 'finetune' ? methodOf(spec) : undefined;

  // What the model starts from.
  const basesOnly = 'applies to domain_adaptation with method multi_source only';
  if (type === 'train') {
    if (!model.architecture) problem('/model/architecture', 'is required for a train job');
    if (model.base) problem('/model/base', 'is not allowed for a train job (use type "finetune" to start from a model)');
    if (model.bases) problem('/model/bases', basesOnly);
  } else if (type === 'finetune' || type === 'evaluate' || type === 'predict') {
    if (!model.base) problem('/model/base', `is required for ${article(type)} job`);
    if (model.architecture)
      problem(
        '/model/architecture',
        `is not allowed for ${type === 'finetune' ? 'a finetune job (the base model fixes it)' : `${article(type)} job (the base model is run as it is)`}`,
      );
    if (model.bases) problem('/model/bases', basesOnly);
  } else if (own?.checkModel) {
    own.checkModel(model, problem);
  } else {
    if (model.bases) problem('/model/bases', basesOnly);
    if (!model.base === !model.architecture)
      problem('/model', 'needs exactly one of base (a model to adapt) or architecture (a model trained from scratch on data.source)');
  }
  if (model.architecture) {
    const a = model.architecture;
    onlyParams(a, '/model/architecture', ARCHITECTURE_PARAMS[a.kind], `architecture ${a.kind}`, problem);
  }

  // How it is trained.
  if (strategy && type !== 'finetune') problem('/strategy', 'applies to finetune jobs only');
  if (strategy) onlyParams(strategy, '/strategy', STRATEGY_PARAMS[strategy.kind], `strategy ${strategy.kind}`, problem);
  for (const key of ['featureLayer', 'head'] as const) {
    if (strategy?.[key] !== undefined && strategy.newHead !== true) problem(`/strategy/${key}`, 'needs newHead: true (it shapes the new head)');
  }
  if (strategy?.trainFrom !== undefined && strategy.trainableLayers !== undefined) {
    problem('/strategy/trainFrom', 'cannot go with trainableLayers; name the first trained layer or count the trained layers, not both');
  }
  if (type === 'domain_adaptation' && !method) problem('/method', `is required for a domain_adaptation job: one of ${Object.keys(METHOD_PARAMS).join(', ')}`);
  if (method && type !== 'domain_adaptation') problem('/method', 'applies to domain_adaptation jobs only');
  if (method) onlyParams(method, '/method', METHOD_PARAMS[method.kind], `method ${method.kind}`, problem);
  own?.check?.(spec, problem);

  // Which data it reads.
  const roles = DATA_ROLES[type];
  const needsTarget = type === 'domain_adaptation' && (method === undefined || METHOD_DESCRIPTORS[method.kind].needsTarget);
  const required = needsTarget ? [...roles.required, 'target' as const] : roles.required;
  for (const [role, value] of Object.entries(spec.data) as [DataRole, unknown][]) {
    if (value !== undefined && !roles.allowed.includes(role)) problem(`/data/${role}`, `is not used by a ${type} job${ROLE_HINTS[role] ?? ''}`);
  }
  for (const role of required) {
    if (spec.data[role] === undefined)
      problem(`/data/${role}`, `is required for ${article(type)} job${role === 'target' ? ` with method ${method?.kind}` : ''}`);
  }
  if (spec.data.targetLabelled && spec.data.target === undefined) problem('/data/targetLabelled', 'needs data.target');

  if (spec.output && type !== 'predict') problem('/output', `applies to predict jobs only (${article(type)} job writes no predictions file)`);
  if (type === 'evaluate' || type === 'predict') {
    if (hp) problem('/hyperparameters', `is not used by ${article(type)} job (nothing is trained)`);
    if (spec.checkpoint) problem('/checkpoint', `is not used by ${article(type)} job (nothing is trained)`);
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
  if (hp.augment) checkAugment(spec, hp.augment, problem);
  own?.checkTraining?.(spec, hp, problem);
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

/** How many layer names a message about an unknown one lists. */
const NAMES_SHOWN = 8;

/**
 * The layer names a spec gives (strategy.featureLayer, strategy.trainFrom, method.featureLayer)
 * against the layers of the model it starts from, `layers` in the model's order. The API checks
 * them from the model's stored model.json, the training child from the loaded model.
 */
export function checkLayerNames(spec: JobSpec, modelId: string, layers: readonly string[], problem: Problem): void {
  const index = (pointer: string, name: string | undefined): number | undefined => {
    if (name === undefined) return undefined;
    const at = layers.indexOf(name);
    if (at >= 0) return at;
    // the layers near the output are the ones people cut at or train from
    const shown = layers.slice(-NAMES_SHOWN);
    problem(
      pointer,
      `is '${name}', but model ${modelId} has no layer of that name; expected one of its ${layers.length} layers, e.g. ${shown.map((n) => `'${n}'`).join(', ')}` +
        (layers.length > shown.length ? ' (the last ones)' : ''),
    );
    return undefined;
  };
  const { strategy, method } = spec;
  const cut = index('/strategy/featureLayer', strategy?.featureLayer);
  const from = index('/strategy/trainFrom', strategy?.trainFrom);
  if (cut !== undefined && from !== undefined && from > cut) {
    problem(
      '/strategy/trainFrom',
      `is '${strategy!.trainFrom}', which comes after featureLayer '${strategy!.featureLayer}' and is removed with the old head; expected a layer up to it`,
    );
  }
  if (method && (METHOD_PARAMS[method.kind] as readonly string[]).includes('featureLayer')) index('/method/featureLayer', method.featureLayer);
}

/** What augment may ask: some change, and target batches only where a job has them. */
function checkAugment(spec: JobSpec, augment: Augment, problem: Problem): void {
  if (!changesAnything(augment))
    problem('/hyperparameters/augment', 'changes nothing; expected at least one of flip, rotate, translate, scale, brightness, contrast or noise above 0');
  if (augment.apply === undefined) return;
  if (spec.type !== 'domain_adaptation') {
    problem('/hyperparameters/augment/apply', `applies to domain_adaptation jobs only (a ${spec.type} job augments data.train)`);
  } else if (augment.apply.includes('target')) {
    const kind = spec.method?.kind;
    if (!(spec.data.targetLabelled === true || (kind !== undefined && METHOD_DESCRIPTORS[kind].trainsOnTarget))) {
      const others = TARGET_TRAINING_KINDS;
      problem(
        '/hyperparameters/augment/apply',
        `names target, but method ${kind} trains on no target batches (${others.slice(0, -1).join(', ')} and ${others.at(-1)} do, and any method with data.targetLabelled)`,
      );
    }
  }
}

/** limits.maxRuntimeSeconds within the operator's maximum (JOB_MAX_RUNTIME_SECONDS); the worker host holds every attempt to it too. */
export function checkRuntimeLimit(spec: JobSpec, maxRuntimeSeconds: number, problem: Problem): void {
  const asked = spec.limits?.maxRuntimeSeconds;
  if (asked !== undefined && asked > maxRuntimeSeconds) {
    problem(
      '/limits/maxRuntimeSeconds',
      `is ${asked}; expected at most ${maxRuntimeSeconds} (JOB_MAX_RUNTIME_SECONDS, the longest this service runs an attempt)`,
    );
  }
}
