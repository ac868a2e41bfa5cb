/**
 * The input gradient of a strided 2-D convolution written as a forward convolution: dy spread out
 * by the strides (s - 1 zeros after each value), padded by k - 1 - (the forward's padding before)
 * in front, then convolved with the kernel flipped in space. Shared by conv2d's and depthwise
 * conv2d's input gradients, which differ only in that last convolution.
 */
import tf = require('@tensorflow/tfjs');

export interface SpreadGradient {
  /** dy spread by the strides, cut where the forward left input rows or columns unread */
  spread: tf.Tensor4D;
  /** the padding the flipped convolution takes, [[0, 0], [top, bottom], [left, right], [0, 0]] */
  pads: [[0, 0], [number, number], [number, number], [0, 0]];
}

/**
 * dy of a convolution with a `kh` x `kw` kernel over an input of `inH` x `inW`, with `padTop`,
 * `padLeft` the forward's padding before, ready for the flipped convolution.
 */
export function spreadGradient(
  dy: tf.Tensor4D,
  o: { kh: number; kw: number; inH: number; inW: number; strides: [number, number]; padTop: number; padLeft: number },
): SpreadGradient {
  const [batch, outH, outW, channels] = dy.shape;
  const [sh, sw] = o.strides;
  const spread = sh === 1 && sw === 1 ? dy : spreadRows(dy, batch, outH, outW, channels, sh, sw);
  // The spread rows end in s - 1 zeros, which the padding after (negative when the forward left
  // input rows unread, or for a kernel smaller than the stride) takes back.
  const [top, left] = [o.kh - 1 - o.padTop, o.kw - 1 - o.padLeft];
  const bottom = o.inH + o.kh - 1 - top - outH * sh;
  const right = o.inW + o.kw - 1 - left - outW * sw;
  const cut =
    bottom < 0 || right < 0 ? tf.slice(spread, [0, 0, 0, 0], [batch, outH * sh + Math.min(bottom, 0), outW * sw + Math.min(right, 0), channels]) : spread;
  return {
    spread: cut,
    pads: [
      [0, 0],
      [top, Math.max(bottom, 0)],
      [left, Math.max(right, 0)],
      [0, 0],
    ],
  };
}

/** dy with s - 1 zero rows (columns) after each row (column): the positions the strides skipped. */
export function spreadRows(dy: tf.Tensor4D, batch: number, outH: number, outW: number, channels: number, sh: number, sw: number): tf.Tensor4D {
  const split = tf.reshape(dy, [batch, outH, 1, outW, 1, channels]);
  const padded = tf.pad(split, [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  return tf.reshape(padded, [batch, outH * sh, outW * sw, channels]);
}
