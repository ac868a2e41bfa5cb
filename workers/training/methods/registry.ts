/**
 * Every method by the kind a spec names it with. Kept apart from method.ts, which the method
 * modules import, so that importing one method module alone never meets a half-built table.
 */
import type { JobSpec } from '../../../src/schemas/job.js';
import type { MethodKind, StrategyKind } from '../../../src/schemas/methods.js';
import { adabn } from './adabn.js';
import { cdan } from './cdan.js';
import { coral } from './coral.js';
import { dann } from './dann.js';
import { freeze } from './freeze.js';
import { full } from './full.js';
import { l2sp } from './l2sp.js';
import { mcc } from './mcc.js';
import type { Method, MethodContext, MethodFactory } from './method.js';
import { mmd } from './mmd.js';
import { multiSource } from './multi-source.js';
import { pseudoLabel } from './pseudo-label.js';

/** Every kind the schema accepts: one without a module here fails the build, not a job. */
const METHODS = {
  full,
  freeze,
  l2sp,
  multi_source: multiSource,
  dann,
  coral,
  mmd,
  adabn,
  pseudo_label: pseudoLabel,
  cdan,
  mcc,
} satisfies Record<StrategyKind | MethodKind, MethodFactory>;

/** The kind of method a spec trains with: its strategy or adaptation method, else `full`. */
export function methodKind(spec: JobSpec): StrategyKind | MethodKind {
  return spec.method?.kind ?? spec.strategy?.kind ?? 'full';
}

export function createMethod(ctx: MethodContext): Method {
  return METHODS[methodKind(ctx.spec)](ctx);
}
