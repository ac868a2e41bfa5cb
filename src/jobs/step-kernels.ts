/**
 * Which gradients the wasm training step computes in its own WASM kernels
 * (workers/training/wasm-kernels.wat) instead of through tfjs ops that cut patches or lay pooling
 * windows out: one rule for the step (workers/training/network.ts and gradients/wasm-kernels.ts)
 * and for the job estimate (estimate.ts), which counts the working memory those ops keep.
 */

/** The kernel gradient's outputs per pass over dy (four WASM SIMD vectors of sums). */
const KERNEL_GRAD_CHANNELS = 16;

/**
 * A convolution's kernel gradient sums its products in our kernel, cutting no patches: when a
 * patch (kh·kw·inChannels values) is smaller than a pixel of dy and the outputs come in whole
 * passes of 16.
 */
export function sumsKernelGradDirectly(patchSize: number, outChannels: number): boolean {
  return patchSize < outChannels && outChannels % KERNEL_GRAD_CHANNELS === 0;
}

/**
 * Otherwise, a convolution with strides 1 has its kernel gradient as one product of ours per tap,
 * over its input padded and dy laid on the same grid (wasm-kernels.ts convKernelGradByTaps).
 */
export function sumsKernelGradByTaps(strides: readonly [number, number]): boolean {
  return strides[0] === 1 && strides[1] === 1;
}

/**
 * Pooling windows that do not overlap and are not padded (strides equal to the pool size): max
 * pooling's gradient is then our kernel, average pooling's a few elementwise ops.
 */
export function windowsApart(size: readonly [number, number], strides: readonly [number, number], padded: boolean): boolean {
  return size[0] === strides[0] && size[1] === strides[1] && !padded;
}
