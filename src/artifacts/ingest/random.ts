/**
 * Seeded randomness for derived datasets. Each use (split, subset, noise) draws from its own
 * stream of the one seed, so adding noise to a transform does not change which examples a
 * split or subset picks, and the two parts of a split agree whatever else they apply.
 */

/** mulberry32: a small, fast, well-mixed 32-bit generator returning floats in [0, 1) */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PURPOSES = { split: 0x5b1f, subset: 0x2c0d, noise: 0x7e11 } as const;

export function randomStream(seed: number, purpose: keyof typeof PURPOSES): () => number {
  return mulberry32(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(PURPOSES[purpose], 0xc2b2ae35));
}

/** Fisher-Yates, in place. */
export function shuffle(items: number[], random: () => number): number[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = items[i];
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}

/** Standard normal draws (Box-Muller). */
export function gaussian(random: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = random();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * random();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}
