/**
 * EnsV, ensemble-based validation (Hu, Luo, Liang and Foo, "Towards Reliable Model Selection for
 * Unsupervised Domain Adaptation: An Empirical Study and A Certified Baseline", NeurIPS 2024
 * Datasets and Benchmarks; their ensv.py): the candidates' softmax outputs on the unlabelled
 * target are averaged, the average's argmax is each example's pseudo-label, and a candidate scores
 * the share of examples whose own argmax agrees with it. The pick is the highest score, ties to the
 * first candidate (their `score_list.index(max(score_list))`).
 *
 * It reads every candidate at once, so it is a reading of a whole sweep, not an epoch metric of a
 * job: bench:sweeps computes it from each trial's batch predictions (bench/sweeps.ts). Pure.
 */

const argmax = (row: number[]) => row.reduce((best, x, i) => (x > row[best] ? i : best), 0);

/**
 * Each candidate's agreement with the ensemble's pseudo-labels. `probabilities[c][i][k]`: candidate
 * c's probability of class k for target example i, every candidate over the same examples and classes.
 */
export function ensembleAgreement(probabilities: number[][][]): number[] {
  const first = probabilities[0];
  if (first === undefined) return [];
  const pseudo = first.map((row, i) => argmax(row.map((_, k) => probabilities.reduce((sum, c) => sum + c[i][k], 0))));
  return probabilities.map((c) => {
    if (c.length !== pseudo.length) throw new Error(`a candidate has predictions for ${c.length} examples; expected ${pseudo.length}, as the first`);
    return c.filter((row, i) => argmax(row) === pseudo[i]).length / pseudo.length;
  });
}

/** The index of the candidate EnsV picks: the highest agreement, ties to the first. */
export function ensembleAgreementPick(agreement: number[]): number {
  return argmax(agreement);
}
