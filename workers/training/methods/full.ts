import { plainMethod, type MethodFactory } from './method.js';

/** Full fine-tuning (and training from scratch): every trainable weight, no extra term. */
export const full: MethodFactory = ({ model }) => plainMethod('full', model);
