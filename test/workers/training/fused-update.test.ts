/**
 * The fused SGD and momentum updates (workers/training/fused-update.ts) against tfjs's own
 * optimizers: the same bits after several steps, a learning-rate change included, whether tfjs's
 * run is on wasm or on the cpu backend (both round every product and sum to float32, as the
 * fused pass does); the kernels they save; products that see the new values; the column sums,
 * transposes and products of a dense layer against tfjs's (fused, against the exact product); the
 * fresh tensors they write into (aligned, freed whole); and the embedded module is its WAT
 * source assembled.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import tf = require('@tensorflow/tfjs');
import { mulberry32 } from '../../../src/artifacts/ingest/random.js';
import { selectBackend } from '../../../workers/training/backend.js';
import { FusedMomentumOptimizer, FusedSGDOptimizer } from '../../../workers/training/fused-update.js';
import { WASM_KERNELS } from '../../../workers/training/wasm-kernels-binary.js';
import { columnSums, freshTensor, FUSED_PRODUCTS, kernelsOn, matMul, memoryOf, transpose2d, wasmKernels } from '../../../workers/training/wasm-kernels.js';
import { assembleWasmKernels } from '../../helpers/assemble-wasm.js';

before(async () => {
  assert.equal(await selectBackend(), 'wasm');
});

/** Whole vectors of four and tails of 1 to 3 values, up to the seed MLP's 784x128 kernel. */
const SIZES = [1, 10, 1280, 4097, 100_352, 100_355];
const STEPS = 5;

/** Seeded values over many magnitudes, float32 subnormals and signed zeros included. */
/** shapes that leave rows and columns over the kernels' tiles, and a single element */
const LEFTOVER_SHAPES = [
  [1, 1],
  [3, 5],
  [37, 6],
  [4, 9],
] as const;

/** a tensor's float32 values as their bit patterns: equal bits, not merely close values */
const bits = (t: tf.Tensor) => new Uint32Array(Float32Array.from(t.dataSync()).buffer);

function values(seed: number, size: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: size }, (_, i) => {
    if (i % 97 === 0) return i % 2 ? -0 : 0;
    if (i % 89 === 0) return (random() - 0.5) * 1e-38;
    return (random() - 0.5) * 10 ** Math.floor(random() * 8 - 4);
  });
}

type Make = () => tf.Optimizer;

/** Every variable and optimizer slot after STEPS steps on `backend`, as bits. */
async function train(make: Make, backend: 'wasm' | 'cpu'): Promise<Uint32Array[]> {
  await tf.setBackend(backend);
  try {
    const optimizer = make();
    const variables = SIZES.map((size, i) => tf.variable(tf.tensor1d(values(i + 1, size)), true, `fused-${backend}-${i}-${Math.random()}`));
    for (let step = 0; step < STEPS; step++) {
      if (step === 3) (optimizer as tf.SGDOptimizer).setLearningRate(0.0137);
      const grads = Object.fromEntries(variables.map((v, i) => [v.name, tf.tensor1d(values(100 * step + i, v.size))]));
      optimizer.applyGradients(grads);
      tf.dispose(Object.values(grads));
    }
    const slots = (await optimizer.getWeights()).filter((w) => w.name !== 'iter');
    const bitsOf = [...variables, ...slots.map((s) => s.tensor)].map(bits);
    optimizer.dispose();
    tf.dispose(variables);
    return bitsOf;
  } finally {
    await tf.setBackend('wasm');
  }
}

const cases: { name: string; ours: Make; tfjs: Make }[] = [
  { name: 'momentum', ours: () => new FusedMomentumOptimizer(0.05, 0.9), tfjs: () => tf.train.momentum(0.05, 0.9) },
  { name: 'Nesterov momentum', ours: () => new FusedMomentumOptimizer(0.05, 0.9, true), tfjs: () => tf.train.momentum(0.05, 0.9, true) },
  { name: 'SGD', ours: () => new FusedSGDOptimizer(0.05), tfjs: () => tf.train.sgd(0.05) },
];

for (const { name, ours, tfjs } of cases) {
  test(`${name} fused on wasm gives tfjs's bits, tfjs on wasm and on cpu alike`, async () => {
    const got = await train(ours, 'wasm');
    for (const backend of ['wasm', 'cpu'] as const) {
      const expected = await train(tfjs, backend);
      assert.equal(got.length, expected.length);
      got.forEach((bits, i) => {
        const differs = bits.findIndex((b, k) => b !== expected[i][k]);
        assert.equal(differs, -1, `tensor ${i} (${bits.length} values) differs from tfjs on ${backend} at index ${differs}`);
      });
    }
  });
}

/** The kernels one update runs, after the first (which creates the momentum slots). */
function kernelsOfSecondUpdate(optimizer: tf.Optimizer, variables: tf.Variable[]): Promise<number> {
  const grads = () => Object.fromEntries(variables.map((v) => [v.name, tf.onesLike(v)]));
  const first = grads();
  optimizer.applyGradients(first);
  tf.dispose(Object.values(first));
  const second = grads();
  return tf
    .profile(() => optimizer.applyGradients(second))
    .then((info) => {
      tf.dispose(Object.values(second));
      return info.kernels.length;
    });
}

test('variables are updated without kernels; tfjs runs 4 a variable (momentum)', async () => {
  const variables = SIZES.map((size) => tf.variable(tf.zeros([size])));
  const ours = new FusedMomentumOptimizer(0.1, 0.9);
  const reference = tf.train.momentum(0.1, 0.9);
  try {
    assert.equal(await kernelsOfSecondUpdate(ours, variables), 0);
    assert.equal(await kernelsOfSecondUpdate(reference, variables), 4 * SIZES.length);
  } finally {
    ours.dispose();
    reference.dispose();
    tf.dispose(variables);
  }
});

test('a product with an updated variable multiplies by its new values (XNNPACK keeps operands packed by data id)', () => {
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  const w = tf.variable(tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]));
  const optimizer = new FusedSGDOptimizer(1);
  try {
    // packs w for the product, keyed by its data id
    tf.matMul(x, w).dispose();
    const grads = { [w.name]: tf.tensor2d([1, 1, 1, 1, 1, 1], [3, 2]) };
    optimizer.applyGradients(grads);
    tf.dispose(Object.values(grads));
    assert.deepEqual([...w.dataSync()], [0, -1, -1, 0, 0, 0]);
    const y = tf.matMul(x, w);
    assert.deepEqual([...y.dataSync()], [-2, -1, -5, -4]);
    y.dispose();
  } finally {
    optimizer.dispose();
    tf.dispose([x, w]);
  }
});

test("the column sums of a bias gradient give the bits of tfjs-backend-wasm's Sum over axis 0", () => {
  // Not the cpu backend's: it adds in double precision, then rounds once.
  for (const [rows, cols] of [
    [64, 128],
    [64, 10],
    [1, 3],
    [37, 5],
    [128, 7],
  ] as const) {
    const x = tf.tensor2d(values(rows * 1000 + cols, rows * cols), [rows, cols]);
    const ours = columnSums(x);
    const expected = tf.sum(x, 0);
    assert.deepEqual(bits(ours), bits(expected), `[${rows}, ${cols}]`);
    tf.dispose([x, ours, expected]);
  }
});

test("the transposes of a dense layer give tfjs's bits, tiles and the rows and columns left over", () => {
  for (const [rows, cols] of [[784, 128], [128, 64], [64, 10], ...LEFTOVER_SHAPES] as const) {
    const x = tf.tensor2d(values(rows * 1000 + cols, rows * cols), [rows, cols]);
    const ours = transpose2d(x);
    const expected = tf.transpose(x);
    assert.deepEqual(ours.shape, [cols, rows]);
    assert.deepEqual(bits(ours), bits(expected), `[${rows}, ${cols}]`);
    tf.dispose([x, ours, expected]);
  }
});

/** [m, k, n]: the seed MLP's four products, then blocks of 4 rows by 8 columns with rows, columns or both left over, a single row, column or term */
const PRODUCT_SHAPES = [
  [64, 784, 128],
  [784, 64, 128],
  [64, 128, 10],
  [128, 64, 10],
  [37, 6, 16],
  [3, 5, 9],
  [5, 33, 3],
  [1, 1, 1],
  [4, 1, 8],
  [9, 2, 7],
] as const;

/** Our kernels on the wasm backend's memory, with matMul's multiply-adds fused or not. */
function productKernels(fused: boolean) {
  const wasm = wasmKernels();
  assert.ok(wasm, 'these tests run on the wasm backend');
  return { backend: wasm.backend, kernels: kernelsOn(memoryOf(wasm.backend), { fused }) };
}

test("a dense layer's products, multiply-adds apart: the bits of XNNPACK's product (then tfjs's Add of the bias), a read as laid out and transposed", () => {
  const strict = productKernels(false);
  for (const [m, k, n] of PRODUCT_SHAPES) {
    const a = tf.tensor2d(values(m * 1000 + k, m * k), [m, k]);
    const aT = tf.transpose(a);
    const b = tf.tensor2d(values(k * 1000 + n, k * n), [k, n]);
    const bias = tf.tensor1d(values(n, n));
    const product = tf.matMul(a, b);
    const withBias = tf.add(product, bias);
    for (const [ours, expected, how] of [
      [matMul(strict, a, b, { transposeA: false }), product, 'a·b'],
      [matMul(strict, aT, b, { transposeA: true }), product, '(aᵀ)ᵀ·b'],
      [matMul(strict, a, b, { transposeA: false, bias }), withBias, 'a·b + bias'],
      [matMul(strict, aT, b, { transposeA: true, bias }), withBias, '(aᵀ)ᵀ·b + bias'],
    ] as const) {
      assert.deepEqual(ours.shape, [m, n], how);
      assert.deepEqual(bits(ours), bits(expected), `${how}, a [${m}, ${k}], b [${k}, ${n}]`);
      ours.dispose();
    }
    tf.dispose([a, aT, b, bias, product, withBias]);
  }
});

test("a dense layer's products, multiply-adds fused: each output within one rounding per term of the exact product, nearer to it than XNNPACK's overall, a read either way round alike", () => {
  // Node 22's V8 validates relaxed SIMD, so the step takes the fused kernels there
  assert.equal(FUSED_PRODUCTS, Number(process.versions.node.split('.')[0]) >= 22, 'the fused kernels are taken where the engine has relaxed SIMD');
  if (!FUSED_PRODUCTS) return;
  const [strict, fused] = [productKernels(false), productKernels(true)];
  let fusedError = 0;
  let strictError = 0;
  let differ = 0;
  let outputs = 0;
  for (const [m, k, n] of PRODUCT_SHAPES) {
    const a = tf.tensor2d(values(m * 1000 + k, m * k), [m, k]);
    const aT = tf.transpose(a);
    const b = tf.tensor2d(values(k * 1000 + n, k * n), [k, n]);
    const bias = tf.tensor1d(values(n, n));
    const [av, bv, biasv] = [a.dataSync(), b.dataSync(), bias.dataSync()];
    const ours = matMul(fused, a, b, { transposeA: false, bias });
    const oursT = matMul(fused, aT, b, { transposeA: true, bias });
    const apart = matMul(strict, a, b, { transposeA: false, bias });
    assert.deepEqual(bits(oursT), bits(ours), `a transposed, a [${m}, ${k}], b [${k}, ${n}]`);
    const [got, gotApart] = [ours.dataSync(), apart.dataSync()];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let exact = biasv[j];
        let magnitude = Math.abs(biasv[j]);
        for (let t = 0; t < k; t++) {
          exact += av[i * k + t] * bv[t * n + j];
          magnitude += Math.abs(av[i * k + t] * bv[t * n + j]);
        }
        const error = Math.abs(got[i * n + j] - exact);
        // a sum of k + 1 terms rounded once per term: within (k + 1)·u of their magnitudes, u = 2^-24
        assert.ok(error <= (k + 1) * 2 ** -24 * magnitude, `[${m}, ${k}, ${n}] (${i}, ${j}): off by ${error} of ${magnitude}`);
        fusedError += error;
        strictError += Math.abs(gotApart[i * n + j] - exact);
        differ += got[i * n + j] === gotApart[i * n + j] ? 0 : 1;
        outputs++;
      }
    }
    tf.dispose([a, aT, b, bias, ours, oursT, apart]);
  }
  assert.ok(differ > 0, 'the fused products differ from the unfused ones somewhere: they are fused');
  assert.ok(fusedError < strictError, `summed error fused ${fusedError}, apart ${strictError} (${differ} of ${outputs} outputs differ)`);
});

test('fresh tensors lie at multiples of 64 bytes, hold what is written there, and are freed whole: the heap does not grow over many', () => {
  const { backend } = wasmKernels()!;
  const memory = memoryOf(backend);
  const round = () => {
    const made = Array.from({ length: 40 }, (_, i) => freshTensor(backend, [1000 + i, 257]));
    for (const [i, { tensor, offset }] of made.entries()) {
      assert.equal(offset % 64, 0, `tensor ${i} lies at ${offset}`);
      new Float32Array(memory.buffer, offset, tensor.size).fill(i + 0.5);
      const read = tensor.dataSync();
      assert.ok(read[0] === i + 0.5 && read[tensor.size - 1] === i + 0.5, `tensor ${i} reads its values back`);
    }
    tf.dispose(made.map((m) => m.tensor));
  };
  const tensors = tf.memory().numTensors;
  round();
  const heap = memory.buffer.byteLength;
  // Some 40 MiB a round: freeing the wrong offset corrupts the allocator (a trap), not freeing at
  // all would grow the heap by that much each time. malloc's free lists fragment some, tfjs's own
  // allocations too: less than one round's worth over ten.
  const round1 = 40 * 1020 * 257 * 4;
  for (let i = 0; i < 10; i++) round();
  assert.ok(memory.buffer.byteLength - heap < round1, `the heap grew by ${memory.buffer.byteLength - heap} bytes over ten rounds of ${round1}`);
  assert.equal(tf.memory().numTensors, tensors);
});

test('the embedded module is wasm-kernels.wat assembled, for plain and shared memory', async () => {
  assert.deepEqual(await assembleWasmKernels(), WASM_KERNELS, 'run npm run build:wasm after changing wasm-kernels.wat');
});
