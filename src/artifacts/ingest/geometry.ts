/**
 * Scale, rotation and translation of an image as one affine map about its centre, applied in
 * a single bilinear resampling (chaining three resamplings would blur three times). Pixels
 * that come from outside the source are 0.
 */

export interface Geometry {
  /** zoom factor, > 0 */
  scale?: number;
  /** degrees, counter-clockwise as the image is viewed (rows go down) */
  rotate?: number;
  /** pixels; +x right, +y down */
  translate?: { x: number; y: number };
}

export const hasGeometry = (g: Geometry) =>
  (g.scale !== undefined && g.scale !== 1) ||
  (g.rotate !== undefined && g.rotate % 360 !== 0) ||
  (g.translate !== undefined && (g.translate.x !== 0 || g.translate.y !== 0));

/** cos and sin of `degrees`, exact at multiples of 90 so that quarter turns move pixels exactly. */
function turn(degrees: number): [number, number] {
  if (Number.isInteger(degrees / 90)) {
    const q = (((degrees / 90) % 4) + 4) % 4;
    return (
      [
        [1, 0],
        [0, 1],
        [-1, 0],
        [0, -1],
      ] as const
    )[q] as [number, number];
  }
  const rad = (degrees * Math.PI) / 180;
  return [Math.cos(rad), Math.sin(rad)];
}

/** Source coordinates of every output pixel: xs[k], ys[k] for pixel k = y * w + x. */
export function sourceGrid(g: Geometry, h: number, w: number): { xs: Float64Array; ys: Float64Array } {
  const [cos, sin] = turn(g.rotate ?? 0);
  const s = g.scale ?? 1;
  const tx = g.translate?.x ?? 0;
  const ty = g.translate?.y ?? 0;
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const xs = new Float64Array(h * w);
  const ys = new Float64Array(h * w);
  // forward: p' = s R p + t about the centre, with R = [[cos, sin], [-sin, cos]] in row-down
  // coordinates (counter-clockwise on screen); each output pixel samples p = R^T (p' - t) / s
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = x - cx - tx;
      const v = y - cy - ty;
      xs[y * w + x] = cx + (cos * u - sin * v) / s;
      ys[y * w + x] = cy + (sin * u + cos * v) / s;
    }
  }
  return { xs, ys };
}

/** Resamples one [h, w, c] image (channels last) into `out` along a source grid. */
export function warp(src: ArrayLike<number>, out: Float32Array, h: number, w: number, c: number, grid: { xs: Float64Array; ys: Float64Array }): void {
  const { xs, ys } = grid;
  const at = (x: number, y: number, ch: number) => (x >= 0 && x < w && y >= 0 && y < h ? src[(y * w + x) * c + ch] : 0);
  for (let k = 0; k < h * w; k++) {
    const sx = xs[k];
    const sy = ys[k];
    const x0 = Math.floor(sx);
    const y0 = Math.floor(sy);
    const fx = sx - x0;
    const fy = sy - y0;
    for (let ch = 0; ch < c; ch++) {
      const top = at(x0, y0, ch) * (1 - fx) + (fx === 0 ? 0 : at(x0 + 1, y0, ch) * fx);
      const bottom = fy === 0 ? 0 : at(x0, y0 + 1, ch) * (1 - fx) + (fx === 0 ? 0 : at(x0 + 1, y0 + 1, ch) * fx);
      out[k * c + ch] = top * (1 - fy) + bottom * fy;
    }
  }
}
