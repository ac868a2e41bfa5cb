/**
 * The label-free validators of src/jobs/validators.ts, computed at each epoch's end of a
 * domain-adaptation job on a fixed seeded sample of the target (and of the source sets, for dev),
 * in inference mode. Definitions follow pytorch-adapt's validators (docs/methods.md cites each);
 * the scores are reported as the quantities themselves (entropy and dev lower is better), not
 * negated as pytorch-adapt's "higher is better" scores are.
 */
import tf = require('@tensorflow/tfjs');
import { mulberry32, shuffle } from '../../src/artifacts/ingest/random.js';
import { DOMAIN_CLASSIFIERS, SND_BLOCK_ROWS, type ValidatorName } from '../../src/jobs/validators.js';
import { Batcher, subset, type Dataset } from './data.js';
import { oneHot } from './evaluate.js';
import { inferenceBatchRows } from './eval-batch-rows.js';
import type { FeatureLayer } from './network.js';

/** SND's softmax temperature over cosine similarities (Saito et al. 2021; pytorch-adapt's default). */
export const SND_TEMPERATURE = 0.05;
/** MixVal's mixing weight of a pair's first example (Hu et al. 2023; the authors' code's default): it stays the dominant one. */
export const MIXVAL_LAMBDA = 0.55;
/** Below float32's smallest normal: 0 log 0 counts as 0 without producing -Infinity * 0. */
const TINY = 1e-30;

/** Per-row entropy -sum_c p_c log p_c of probabilities p, [n]. */
export function rowEntropy(p: tf.Tensor2D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(p, tf.log(tf.maximum(p, TINY))), 1)) as tf.Tensor1D;
}

/** Mean entropy of the predictions: low when the model is confident on the target. */
export function meanEntropy(p: tf.Tensor2D): tf.Scalar {
  return tf.mean(rowEntropy(p));
}

/** Information maximisation: H(mean_i p_i) - mean_i H(p_i); high when predictions are confident and diverse. */
export function informationMaximisation(p: tf.Tensor2D): tf.Scalar {
  return tf.sub(tf.squeeze(rowEntropy(tf.mean(p, 0, true) as tf.Tensor2D)), meanEntropy(p));
}

/**
 * Soft neighbourhood density: the cosine similarities between the L2-normalised predictions,
 * each row without its diagonal and softmax-normalised at `temperature`, and the mean entropy of
 * those rows. High when each prediction has many close neighbours (dense clusters). The rows are
 * independent: SND_BLOCK_ROWS of them at a time, each block's arrays freed before the next.
 */
export function softNeighbourhoodDensity(p: tf.Tensor2D, temperature = SND_TEMPERATURE): tf.Scalar {
  const n = p.shape[0];
  return tf.tidy(() => {
    const unit = tf.div(p, tf.maximum(tf.norm(p, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D;
    const unitT = tf.transpose(unit);
    const entropies: tf.Tensor1D[] = [];
    for (let start = 0; start < n; start += SND_BLOCK_ROWS) {
      const rows = Math.min(SND_BLOCK_ROWS, n - start);
      entropies.push(
        tf.tidy(() => {
          const similarity = tf.matMul(tf.slice(unit, [start, 0], [rows, -1]), unitT);
          // The diagonal (each point with itself) pushed far below any similarity: its softmax weight is 0,
          // which leaves the other entries as pytorch-adapt's mask_out_self leaves them.
          // (int32: tfjs-backend-wasm 4.22's OneHot writes a float32 onValue's integer bits)
          const self = tf.cast(tf.oneHot(tf.range(start, start + rows, 1, 'int32'), n), 'float32');
          const masked = tf.sub(similarity, tf.mul(self, 1e4));
          return rowEntropy(tf.softmax(tf.div(masked, temperature)) as tf.Tensor2D);
        }),
      );
    }
    return tf.mean(entropies.length === 1 ? entropies[0] : tf.concat(entropies));
  });
}

/**
 * MixVal's inter-cluster probe (Hu et al. 2023, "Mixed Samples as Probes for Unsupervised Model
 * Selection in Domain Adaptation"; the authors' val_mixval_inter.py) on one batch: each row a is
 * paired with the row b at the mirrored position (the batch reversed, as their code pairs), and
 * where a and b are predicted to be of different classes the model sees λ·x_a + (1 − λ)·x_b. Counts
 * those pairs and how many of them it predicts as a's class: a model whose classes' boundaries lie
 * between the target's clusters keeps the dominant example's class. `predict` maps inputs to logits.
 */
export function mixedPairs(
  predict: (x: tf.Tensor) => tf.Tensor,
  x: tf.Tensor,
  logits: tf.Tensor2D,
  lambda = MIXVAL_LAMBDA,
): { pairs: tf.Scalar; agreeing: tf.Scalar } {
  return tf.tidy(() => {
    const labels = tf.argMax(logits, 1);
    const inter = tf.notEqual(labels, tf.reverse(labels, 0));
    const mixed = tf.add(tf.mul(x, lambda), tf.mul(tf.reverse(x, 0), 1 - lambda));
    const kept = tf.logicalAnd(inter, tf.equal(tf.argMax(predict(mixed), 1), labels));
    return { pairs: tf.sum(tf.cast(inter, 'float32')), agreeing: tf.sum(tf.cast(kept, 'float32')) };
  });
}

/**
 * DEV's risk (You et al. 2019, eq. 6; pytorch-adapt's get_dev_risk): the importance-weighted
 * mean loss with its control variate, mean(w l) + eta mean(w) - eta, eta = -cov(w l, w) / var(w)
 * (unbiased moments). In double precision: it is a handful of sums over a few thousand numbers.
 */
export function devRisk(weights: ArrayLike<number>, losses: ArrayLike<number>): number {
  const n = weights.length;
  let mw = 0;
  let mwl = 0;
  for (let i = 0; i < n; i++) {
    mw += weights[i] / n;
    mwl += (weights[i] * losses[i]) / n;
  }
  let cov = 0;
  let variance = 0;
  for (let i = 0; i < n; i++) {
    const dw = weights[i] - mw;
    cov += ((weights[i] * losses[i] - mwl) * dw) / (n - 1);
    variance += (dw * dw) / (n - 1);
  }
  // Equal weights (a classifier that cannot tell the domains apart): no variate to correct with.
  const eta = variance > 0 ? -cov / variance : 0;
  return mwl + eta * mw - eta;
}

const { decays: DOMAIN_DECAYS, hidden: DOMAIN_HIDDEN, steps: DOMAIN_STEPS, learningRate: DOMAIN_LEARNING_RATE, linearFolds: LINEAR_FOLDS } = DOMAIN_CLASSIFIERS;

/** What the domain classifiers of one epoch give: DEV's importance weights, its classifier's held-out accuracy and the linear probe's cross-validated one. */
export interface DomainClassifiers {
  /** p_t(x) / p_s(x) for each row of `validation`, from the one-hidden-layer classifier */
  weights: Float32Array;
  /** held-out accuracy of that classifier (`devDomainAccuracy`) */
  domainAccuracy: number;
  /** cross-validated accuracy of a linear classifier on the same features (`linearDomainAccuracy`): the proxy A-distance's probe */
  linearDomainAccuracy: number;
}

/**
 * Two domain classifiers trained full-batch on standardised `source` (label 1) against `target`
 * (label 0) features, each tried with every L2 penalty of DOMAIN_CLASSIFIERS (src/jobs/validators.ts):
 * - DEV's, with one hidden layer, trained on 80% and its penalty chosen on the other 20% (the last
 *   of five folds): its importance weights for the rows of `validation`,
 *   w = P(target|x) / P(source|x) · Ns / Nt. pytorch-adapt trains a wider classifier with early
 *   stopping over nine decays; this bounded version keeps the cost of each epoch's validation small.
 * - a linear one, for errorBound's proxy A-distance, its accuracy cross-validated over
 *   DOMAIN_CLASSIFIERS.linearFolds folds (a classifier per fold, each row predicted by the one
 *   that did not train on it) and balanced across the domains. Ben-David et al. 2007 and Ganin et al. 2016 measure the distance with a linear classifier,
 *   the hypothesis class of a head on the features. A hidden layer separates what no linear head
 *   would, and so overstates the distance: on the shrunk digits of docs/benchmarks.md it told every
 *   trial's features apart (held-out accuracy 0.96-1.0).
 */
export function domainClassifiers(source: tf.Tensor2D, target: tf.Tensor2D, validation: tf.Tensor2D, seed: number): DomainClassifiers {
  const ns = source.shape[0];
  const nt = target.shape[0];
  const d = source.shape[1];
  // Variables outlive tidy: every one made is listed here and disposed at the end.
  const made: tf.Variable[] = [];
  try {
    return tf.tidy(() => {
      const all = tf.concat([source, target]);
      const { mean, variance } = tf.moments(all, 0, true);
      const scale = tf.sqrt(tf.add(variance, 1e-6));
      const standard = (x: tf.Tensor) => tf.div(tf.sub(x, mean), scale);
      const order = shuffle(
        Array.from({ length: ns + nt }, (_, i) => i),
        mulberry32(seed),
      );
      const x = standard(all);
      const labels = tf.concat([tf.ones([ns, 1]), tf.zeros([nt, 1])]);
      // Per-row loss weights that give each domain half the loss whatever its size (exactly 1 when
      // the sizes are equal): the linear probe's training side of a balanced accuracy.
      const balance = tf.concat([tf.fill([ns, 1], (ns + nt) / (2 * ns)), tf.fill([nt, 1], (ns + nt) / (2 * nt))]);
      const rows = (r: number[]) => tf.tensor1d(r, 'int32');
      // ns, nt ≥ 1: at least two rows, so every fold holds out one and trains on the rest.
      const folds = Math.min(LINEAR_FOLDS, order.length);
      const fold = (k: number) => {
        const [from, to] = [Math.floor((k * order.length) / folds), Math.floor(((k + 1) * order.length) / folds)];
        const [train, held] = [[...order.slice(0, from), ...order.slice(to)], order.slice(from, to)];
        return {
          xTrain: tf.gather(x, rows(train)),
          yTrain: tf.gather(labels, rows(train)),
          balance: tf.gather(balance, rows(train)),
          xHeld: tf.gather(x, rows(held)),
          yHeld: tf.gather(labels, rows(held)),
        };
      };
      /** `use` on fold k's split, whose tensors (a copy of the features) live only as long as it runs: one fold's copy at a time. */
      const withFold = <T>(k: number, use: (split: ReturnType<typeof fold>) => T): T => {
        const split = fold(k);
        try {
          return use(split);
        } finally {
          tf.dispose(Object.values(split));
        }
      };
      const variable = (initial: tf.Tensor) => {
        const v = tf.variable(initial);
        made.push(v);
        return v;
      };
      const uniform = (shape: number[], fanIn: number, s: number) =>
        variable(tf.randomUniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), 'float32', s));
      const dense = (input: tf.Tensor, { w, b }: { w: tf.Variable; b: tf.Variable }) => tf.add(tf.matMul(input, w), b);
      /**
       * A classifier with `hidden` units (0: linear) trained on one split with one penalty (its loss
       * `balanced` across the domains or not), and how many held-out rows of each domain it gets right.
       */
      const train = (
        { hidden, decay, seed: s, balanced }: { hidden: number; decay: number; seed: number; balanced: boolean },
        { xTrain, yTrain, balance, xHeld, yHeld }: ReturnType<typeof fold>,
      ) => {
        const width = hidden > 0 ? hidden : 1;
        const first = { w: uniform([d, width], d, s + 1), b: variable(tf.zeros([width])) };
        const second = hidden > 0 ? { w: uniform([hidden, 1], hidden, s + 2), b: variable(tf.zeros([1])) } : undefined;
        const logit = second === undefined ? (x: tf.Tensor) => dense(x, first) : (x: tf.Tensor) => dense(tf.relu(dense(x, first)), second);
        const penalty = () => (second === undefined ? tf.sum(tf.square(first.w)) : tf.add(tf.sum(tf.square(first.w)), tf.sum(tf.square(second.w))));
        const optimizer = tf.train.adam(DOMAIN_LEARNING_RATE);
        for (let step = 0; step < DOMAIN_STEPS; step++) {
          tf.tidy(() => {
            optimizer.minimize(
              () => tf.add(tf.losses.sigmoidCrossEntropy(yTrain, logit(xTrain), balanced ? balance : undefined), tf.mul(decay / 2, penalty())) as tf.Scalar,
            );
          });
        }
        optimizer.dispose();
        const predicted = tf.cast(tf.greater(logit(xHeld), 0), 'float32');
        const [source, target] = [tf.mul(predicted, yHeld), tf.mul(tf.sub(1, predicted), tf.sub(1, yHeld))].map((c) => tf.sum(c).dataSync()[0]);
        return { correct: { source, target, all: source + target }, held: yHeld.shape[0], logit };
      };
      // DEV's: the last fold's split (its first 80% of the shuffled rows train). Unbalanced: its
      // posterior carries the samples' sizes, which the weights' Ns / Nt takes out.
      const dev = withFold(folds - 1, (split) =>
        DOMAIN_DECAYS.map((decay, i) => train({ hidden: DOMAIN_HIDDEN, decay, seed: seed + 10 * i, balanced: false }, split)).reduce((a, b) =>
          b.correct.all > a.correct.all ? b : a,
        ),
      );
      // The linear probe's, per penalty: every row counted once, by the fold that held it out (the
      // last fold's classifier is the one a single 80/20 split trained).
      const counts = DOMAIN_DECAYS.map(() => ({ source: 0, target: 0 }));
      for (let k = 0; k < folds; k++) {
        withFold(k, (split) => {
          for (const [i, decay] of DOMAIN_DECAYS.entries()) {
            const { source, target } = train({ hidden: 0, decay, seed: seed + 100 + 10 * i + 1000 * (folds - 1 - k), balanced: true }, split).correct;
            counts[i].source += source;
            counts[i].target += target;
          }
        });
      }
      // Each domain's accuracy weighing half: (source / ns + target / nt) / 2, written so that equal
      // sizes give (source + target) / (ns + nt) to the bit.
      const linearAccuracy = Math.max(...counts.map(({ source, target }) => (source * nt + target * ns) / (2 * ns * nt)));
      // P(target|x) / P(source|x) = exp(-logit), bounded so that no weight overflows.
      const ratio = tf.exp(tf.clipByValue(tf.neg(dev.logit(standard(validation))), -30, 30));
      return { weights: tf.mul(ratio, ns / nt).dataSync() as Float32Array, domainAccuracy: dev.correct.all / dev.held, linearDomainAccuracy: linearAccuracy };
    });
  } finally {
    tf.dispose(made);
  }
}

/** A fixed seeded sample of at most `size` rows of `data` (all of them when it is smaller). */
export function sample(data: Dataset, size: number, seed: number): Dataset {
  const n = data.labels.length;
  if (n <= size) return data;
  const rows = shuffle(
    Array.from({ length: n }, (_, i) => i),
    mulberry32(seed),
  ).slice(0, size);
  return subset(data, rows);
}

export interface ValidatorSets {
  /** the target's unlabelled examples (their labels, if any, are never read) */
  target: Dataset;
  /** the labelled source set the model trains on: dev's source side of the domain classifier */
  source: Dataset;
  /** data.validation, for dev */
  validation?: Dataset;
}

/** What one inference pass over a sample gives. */
interface Outputs {
  probabilities: tf.Tensor2D;
  logits: tf.Tensor2D;
  features: tf.Tensor2D;
  /** MixVal's counts over the batches (mixedPairs), when the pass was asked to probe */
  probe: { pairs: number; agreeing: number };
}

/**
 * Computes the label-free validators for a model at each epoch's end, on samples drawn once.
 * `valAccuracy` is the training loop's (over the whole of data.validation), not computed here.
 */
export class EpochValidators {
  private readonly both: tf.LayersModel;
  private readonly sets: ValidatorSets;

  constructor(
    model: tf.LayersModel,
    feature: FeatureLayer,
    sets: ValidatorSets,
    private readonly opts: { sampleSize: number; seed: number },
  ) {
    // A view that shares the model's layers and weights: nothing of its own to dispose.
    this.both = tf.model({ inputs: model.inputs, outputs: [(feature.layer?.output as tf.SymbolicTensor | undefined) ?? model.inputs[0], model.outputs[0]] });
    const { sampleSize, seed } = opts;
    this.sets = {
      target: sample(sets.target, sampleSize, seed + 1),
      source: sample(sets.source, sampleSize, seed + 2),
      ...(sets.validation ? { validation: sample(sets.validation, sampleSize, seed + 3) } : {}),
    };
  }

  async compute(): Promise<Partial<Record<ValidatorName, number>> & { devDomainAccuracy?: number; linearDomainAccuracy?: number }> {
    const outputs: Outputs[] = [];
    try {
      const target = await this.pass(this.sets.target, { probe: true });
      outputs.push(target);
      const [entropy, im, snd] = tf.tidy(() => [
        meanEntropy(target.probabilities),
        informationMaximisation(target.probabilities),
        softNeighbourhoodDensity(target.probabilities),
      ]);
      // No two predictions of different classes (a model that answers one class): nothing kept, 0.
      const { pairs, agreeing } = target.probe;
      const scores = { entropy: await read(entropy), im: await read(im), snd: await read(snd), mixval: pairs > 0 ? agreeing / pairs : 0 };
      const validation = this.sets.validation;
      if (validation === undefined) return scores;
      const source = await this.pass(this.sets.source);
      outputs.push(source);
      const val = await this.pass(validation);
      outputs.push(val);
      const { weights, domainAccuracy, linearDomainAccuracy } = domainClassifiers(source.features, target.features, val.features, this.opts.seed + 4);
      const losses = tf.tidy(() =>
        tf.losses
          .softmaxCrossEntropy(oneHot(tf.tensor1d(validation.labels, 'int32'), val.logits.shape[1]), val.logits, undefined, undefined, tf.Reduction.NONE)
          .dataSync(),
      );
      return { ...scores, dev: devRisk(weights, losses), devDomainAccuracy: domainAccuracy, linearDomainAccuracy };
    } finally {
      tf.dispose(outputs.flatMap((o) => [o.probabilities, o.logits, o.features]));
    }
  }

  /**
   * The sample's logits, probabilities and flat features in inference mode, batch by batch; with
   * `probe`, MixVal's mixed pairs of each batch too (a second pass over it, the inputs mixed).
   */
  private async pass(data: Dataset, { probe }: { probe: boolean } = { probe: false }): Promise<Outputs> {
    const batcher = new Batcher(data, inferenceBatchRows(this.both, data.files));
    const logits: tf.Tensor[] = [];
    const features: tf.Tensor[] = [];
    const counts = { pairs: 0, agreeing: 0 };
    const predict = (x: tf.Tensor) => (this.both.apply(x, { training: false }) as tf.Tensor[])[1];
    for (let step = 0; step < batcher.steps; step++) {
      const batch = batcher.fill(step);
      const x = tf.tensor(batch.x, batch.shape, 'float32');
      const [f, l] = tf.tidy(() => {
        const [f, l] = this.both.apply(x, { training: false }) as tf.Tensor[];
        return [tf.reshape(f, [batch.size, -1]), l];
      });
      features.push(f);
      logits.push(l);
      const mixed = probe ? mixedPairs(predict, x, l as tf.Tensor2D) : undefined;
      x.dispose();
      if (mixed !== undefined) {
        counts.pairs += await read(mixed.pairs);
        counts.agreeing += await read(mixed.agreeing);
      }
      // Lets the process handle IPC (cancel requests, heartbeats) between batches.
      await new Promise(setImmediate);
    }
    const joined = tf.tidy(() => {
      const l = tf.concat(logits) as tf.Tensor2D;
      return { logits: l, probabilities: tf.softmax(l) as tf.Tensor2D, features: tf.concat(features) as tf.Tensor2D };
    });
    tf.dispose([...logits, ...features]);
    return { ...joined, probe: counts };
  }
}

async function read(x: tf.Scalar): Promise<number> {
  const value = (await x.data())[0];
  x.dispose();
  return value;
}
