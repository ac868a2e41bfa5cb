import tf = require('@tensorflow/tfjs');
import { dense } from '../network.js';

/** Keeps variable names unique in the process: tfjs registers variables by name. */
let instances = 0;

export interface DomainClassifier {
  /** its variables under their checkpoint names, `<kind>/hidden/kernel`, ... */
  state: Record<string, tf.Variable>;
  /** one logit per row: source or target */
  classify: (inputs: tf.Tensor2D) => tf.Tensor2D;
}

/**
 * The adversarial methods' domain classifier (DANN, CDAN): one hidden relu layer of `hidden`
 * units, then one logit, initialised as PyTorch's nn.Linear and seeded like the model's layers.
 */
export function domainClassifier(o: { kind: string; inputSize: number; hidden: number; seed: number }): DomainClassifier {
  const prefix = `${o.kind}_${++instances}`;
  const uniform = (shape: number[], fanIn: number, s: number, name: string) =>
    tf.tidy(() => tf.variable(tf.randomUniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), 'float32', s), true, `${prefix}/${name}`));
  const [hiddenKernel, hiddenBias, domainKernel, domainBias] = [
    uniform([o.inputSize, o.hidden], o.inputSize, o.seed + 1001, 'hidden/kernel'),
    uniform([o.hidden], o.inputSize, o.seed + 1002, 'hidden/bias'),
    uniform([o.hidden, 1], o.hidden, o.seed + 1003, 'domain/kernel'),
    uniform([1], o.hidden, o.seed + 1004, 'domain/bias'),
  ] as const;
  return {
    state: {
      [`${o.kind}/hidden/kernel`]: hiddenKernel,
      [`${o.kind}/hidden/bias`]: hiddenBias,
      [`${o.kind}/domain/kernel`]: domainKernel,
      [`${o.kind}/domain/bias`]: domainBias,
    },
    classify: (inputs) => dense(tf.relu(dense(inputs, hiddenKernel, hiddenBias, true)), domainKernel, domainBias, true),
  };
}
