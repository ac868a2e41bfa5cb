/**
 * When a dataset's examples are images, and of what [h, w, c]: what image transforms and
 * example pictures go by.
 */

export interface Shaped {
  featureShape: number[] | null;
  imageShape: number[] | null;
}

/**
 * The recorded imageShape; else a featureShape of [h, w] or [h, w, 1 | 3]. With `square`, also
 * a flat featureShape of a square number of values (h = w = sqrt(n), one channel): how data
 * registered without an imageShape, such as MNIST rows in a CSV, can still be rotated.
 */
export function imageShapeOf(d: Shaped, square = false): [number, number, number] | null {
  const recorded = d.imageShape;
  if (recorded && recorded.length === 3) return [recorded[0], recorded[1], recorded[2]];
  const f = d.featureShape;
  if (!f) return null;
  if (f.length === 2) return [f[0], f[1], 1];
  if (f.length === 3 && (f[2] === 1 || f[2] === 3)) return [f[0], f[1], f[2]];
  if (square && f.length === 1) {
    const side = Math.round(Math.sqrt(f[0]));
    if (side >= 2 && side * side === f[0]) return [side, side, 1];
  }
  return null;
}
