/**
 * Every method's tfjs part by the kind a spec names it with (its pure part is in
 * src/jobs/methods/). Kept apart from method.ts, which the method modules import, so that
 * importing one method module alone never meets a half-built table.
 */
import type { JobSpec } from '../../../src/schemas/job.js';
import type { MethodKind, StrategyKind } from '../../../src/schemas/params.js';
import { methodKind } from '../../../src/jobs/methods/registry.js';
import { adabn } from './adabn.js';
import { cdan } from './cdan.js';
import { coral } from './coral.js';
import { dann } from './dann.js';
import { freeze } from './freeze.js';
import { full } from './full.js';
import { l2sp } from './l2sp.js';
import { mcc } from './mcc.js';
import type { Method, MethodContext, MethodModule, StartModel } from './method.js';
import { mmd } from './mmd.js';
import { meanOfBases, multiSource } from './multi-source.js';
import { pseudoLabel } from './pseudo-label.js';

/** Every kind the schema accepts: one without a module here fails the build, not a job. */
const METHODS = {
  full: { create: full },
  freeze: { create: freeze },
  l2sp: { create: l2sp },
  multi_source: { create: multiSource, startModel: meanOfBases },
  dann: { create: dann },
  coral: { create: coral },
  mmd: { create: mmd },
  adabn: { create: adabn },
  pseudo_label: { create: pseudoLabel },
  cdan: { create: cdan },
  mcc: { create: mcc },
} satisfies Record<StrategyKind | MethodKind, MethodModule>;

export function createMethod(ctx: MethodContext): Method {
  return METHODS[methodKind(ctx.spec)].create(ctx);
}

/** The model the spec's method starts from, when the method decides it (see MethodModule). */
export function startModelOf(spec: JobSpec): StartModel | undefined {
  const module: MethodModule = METHODS[methodKind(spec)];
  return module.startModel;
}
