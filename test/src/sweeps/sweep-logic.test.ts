import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SweepSpec } from '../../../src/schemas/sweep.js';
import { objectiveProblems } from '../../../src/sweeps/objective.js';
import { escapeToken, parsePointer, setAt } from '../../../src/sweeps/pointer.js';
import { ashaStop, atChance, bestTrial, isRung, medianStop, selectionFor, trialObjective, type Ranked } from '../../../src/sweeps/selection.js';
import { gridSize, gridValues, spaceProblems, trialParameters } from '../../../src/sweeps/space.js';
import { planTrials } from '../../../src/sweeps/trials.js';

const template = {
  type: 'domain_adaptation',
  model: { architecture: { kind: 'mlp', hidden: [16] } },
  method: { kind: 'coral', weight: 1 },
  data: { source: 'ds_s', target: 'ds_t', validation: 'ds_v' },
  hyperparameters: { epochs: 2, batchSize: 32, optimizer: { name: 'adam', learningRate: 0.001 } },
} as SweepSpec['template'];

const sweep = (over: Partial<SweepSpec>): SweepSpec => ({
  template,
  parameters: { '/method/weight': { min: 0.01, max: 10, scale: 'log' } },
  objective: { metric: 'valAccuracy' },
  algorithm: 'grid',
  maxParallel: 2,
  ...over,
});

describe('JSON pointers', () => {
  test('parse unescapes ~1 and ~0 and refuses what is not a pointer', () => {
    assert.deepEqual(parsePointer('/a~1b/c~0d'), ['a/b', 'c~d']);
    assert.equal(parsePointer('method/weight'), null);
    assert.equal(parsePointer('/a~2'), null);
    assert.equal(escapeToken('/method/weight'), '~1method~1weight');
  });

  test('set copies, may add a last member, needs the parent', () => {
    const doc = { a: { b: 1 }, l: [1, 2] };
    const set = setAt(doc, ['a', 'c'], 2);
    assert.deepEqual(set, { ok: true, doc: { a: { b: 1, c: 2 }, l: [1, 2] } });
    assert.deepEqual(doc, { a: { b: 1 }, l: [1, 2] }, 'the original is untouched');
    assert.deepEqual(setAt(doc, ['l', '1'], 9), { ok: true, doc: { a: { b: 1 }, l: [1, 9] } });
    assert.equal(setAt(doc, ['x', 'y'], 1).ok, false);
    assert.equal(setAt(doc, ['l', '5'], 1).ok, false);
    assert.equal(setAt(doc, ['a', 'b', 'c'], 1).ok, false);
  });
});

describe('search space', () => {
  test('grid values: choices as given, ranges spread on their scale, ints deduplicated', () => {
    assert.deepEqual(gridValues({ values: ['a', { kind: 'mmd' }] }), ['a', { kind: 'mmd' }]);
    assert.deepEqual(gridValues({ min: 0.01, max: 10, scale: 'log', gridPoints: 4 }), [0.01, 0.1, 1, 10]);
    assert.deepEqual(gridValues({ min: 0, max: 1, gridPoints: 3 }), [0, 0.5, 1]);
    assert.deepEqual(gridValues({ min: 1, max: 3, type: 'int', gridPoints: 5 }), [1, 2, 3]);
  });

  test('a grid is every combination, the first parameter slowest', () => {
    const params = { '/a': { values: [1, 2] }, '/b': { values: ['x', 'y', 'z'] } };
    assert.equal(gridSize(params), 6);
    const trials = trialParameters({ parameters: params, algorithm: 'grid' }, { seed: 0, count: 6 });
    assert.deepEqual(trials.slice(0, 4), [
      { '/a': 1, '/b': 'x' },
      { '/a': 1, '/b': 'y' },
      { '/a': 1, '/b': 'z' },
      { '/a': 2, '/b': 'x' },
    ]);
  });

  test('a seeded random search replays, another seed draws otherwise, values stay in range', () => {
    const spec = {
      parameters: { '/w': { min: 0.01, max: 10, scale: 'log' as const }, '/n': { min: 8, max: 64, type: 'int' as const }, '/m': { values: ['coral', 'mmd'] } },
      algorithm: 'random' as const,
    };
    const a = trialParameters(spec, { seed: 42, count: 20 });
    assert.deepEqual(trialParameters(spec, { seed: 42, count: 20 }), a);
    assert.notDeepEqual(trialParameters(spec, { seed: 43, count: 20 }), a);
    for (const t of a) {
      assert.ok((t['/w'] as number) >= 0.01 && (t['/w'] as number) <= 10);
      assert.ok(Number.isInteger(t['/n']) && (t['/n'] as number) >= 8 && (t['/n'] as number) <= 64);
      assert.ok(['coral', 'mmd'].includes(t['/m'] as string));
    }
    assert.ok(new Set(a.map((t) => t['/m'])).size === 2, 'both choices drawn in 20 trials');
  });

  test('bad domains are named at the parameter', () => {
    const errors = spaceProblems({
      parameters: { '/a': { min: 2, max: 1 }, '/b': { min: 0, max: 1, scale: 'log' }, '/c': { min: 0, max: 1, gridPoints: 3 } },
      algorithm: 'random',
    });
    assert.deepEqual(
      errors.map((e) => e.pointer),
      ['/parameters/~1a/min', '/parameters/~1b/min', '/parameters/~1c/gridPoints'],
    );
  });
});

describe('planning trials', () => {
  test('each trial is the template with its values applied, defaults filled', () => {
    const r = planTrials(sweep({ parameters: { '/method': { values: [{ kind: 'coral' }, { kind: 'mmd', weight: 2 }] } } }), 1);
    assert.ok('trials' in r, JSON.stringify(r));
    assert.deepEqual(
      r.trials.map((t) => t.spec.method),
      [{ kind: 'coral' }, { kind: 'mmd', weight: 2 }],
    );
    assert.deepEqual(r.trials[0].spec.model.architecture?.hidden, [16]);
  });

  test('a value the job schema refuses is a 400 at the parameter, naming the trial', () => {
    const r = planTrials(sweep({ parameters: { '/hyperparameters/batchSize': { values: [32, 0] } } }), 1);
    assert.ok('errors' in r);
    assert.equal(r.errors[0].pointer, '/parameters/~1hyperparameters~1batchSize');
    assert.match(r.errors[0].detail, /trial 1 \(\/hyperparameters\/batchSize = 0\)/);
  });

  test('a value that breaks a spec rule is named at the parameter that set it', () => {
    // the rule names /method/threshold; the value that brought it is the whole /method
    const r = planTrials(sweep({ parameters: { '/method': { values: [{ kind: 'coral' }, { kind: 'coral', threshold: 0.9 }] } } }), 1);
    assert.ok('errors' in r);
    assert.equal(r.errors[0].pointer, '/parameters/~1method');
    assert.match(r.errors[0].detail, /\/method\/threshold does not apply to method coral/);
  });

  test('a pointer through a field the template lacks, or no pointer at all', () => {
    const r = planTrials(sweep({ parameters: { '/strategy/alpha': { values: [1] } } }), 1);
    assert.ok('errors' in r);
    assert.equal(r.errors[0].pointer, '/parameters/~1strategy~1alpha');
    const r2 = planTrials(sweep({ parameters: { 'method~2': { values: [1] } } }), 1);
    assert.ok('errors' in r2);
    assert.match(r2.errors[0].detail, /not a JSON pointer/);
  });

  test('random needs maxTrials; a grid cut short is refused', () => {
    const r = planTrials(sweep({ algorithm: 'random' }), 1);
    assert.ok('errors' in r && r.errors[0].pointer === '/maxTrials');
    const r2 = planTrials(sweep({ maxTrials: 2 }), 1);
    assert.ok('errors' in r2 && /grid has 3 points/.test(r2.errors[0].detail));
  });
});

describe('objective', () => {
  test('a metric the jobs report passes; an unknown one or one they cannot report is named', () => {
    const specs = [template];
    assert.deepEqual(objectiveProblems({ objective: { metric: 'valAccuracy' } }, specs), []);
    // errorBound is an epoch metric: it can rank trials and drive early termination
    assert.deepEqual(objectiveProblems({ objective: { metric: 'errorBound' }, earlyTermination: { kind: 'median' } }, specs), []);
    const noValidation = { ...template, data: { source: 'ds_s', target: 'ds_t' } } as SweepSpec['template'];
    assert.match(objectiveProblems({ objective: { metric: 'errorBound' } }, [noValidation])[0].detail, /is errorBound, which needs data.validation/);
    assert.match(objectiveProblems({ objective: { metric: 'nope' } }, specs)[0].detail, /expected one of/);
    assert.match(objectiveProblems({ objective: { metric: 'targetAccuracy' } }, specs)[0].detail, /needs data.targetTest/);
    assert.match(
      objectiveProblems({ objective: { metric: 'testAccuracy' }, earlyTermination: { kind: 'median' } }, specs).at(-1)!.detail,
      /reported every epoch/,
    );
  });
});

describe('selection', () => {
  test("a trial's objective comes from its result, at its best epoch when it kept one", () => {
    assert.deepEqual(trialObjective('valAccuracy', { metrics: { valAccuracy: 0.8 } }, 3), { metric: 'valAccuracy', value: 0.8, epoch: 3 });
    assert.deepEqual(trialObjective('valAccuracy', { metrics: { valAccuracy: 0.8, bestEpoch: 2 } }, 3), { metric: 'valAccuracy', value: 0.8, epoch: 2 });
    assert.equal(trialObjective('valAccuracy', { metrics: { loss: 1 } }, 3), null);
  });

  test('best by goal, ties to the earlier trial, with why', () => {
    const o = (value: number) => ({ metric: 'valLoss', value, epoch: 2 });
    const trials = [
      { index: 0, objective: o(0.5) },
      { index: 1, objective: null },
      { index: 2, objective: o(0.3) },
      { index: 3, objective: o(0.3) },
    ];
    const best = bestTrial(trials, 'minimize');
    assert.equal(best?.trial.index, 2);
    assert.match(best.reason, /trial 2 has the lowest valLoss \(0.3 at epoch 2\) of the 3 trials/);
    assert.equal(bestTrial(trials, 'maximize')?.trial.index, 0);
    assert.equal(bestTrial([{ index: 0, objective: null }], 'maximize'), null);
  });

  test('a best errorBound of 1 or more is said to bound nothing; one below 1 is not', () => {
    const o = (value: number) => ({ metric: 'errorBound', value, epoch: 4 });
    const vacuous = bestTrial(
      [
        { index: 0, objective: o(1.09) },
        { index: 1, objective: o(1.065) },
      ],
      'minimize',
    );
    assert.equal(vacuous?.trial.index, 1);
    assert.match(vacuous.reason, /; but errorBound is 1 or more on every trial, so it bounds nothing here/);
    const informative = bestTrial(
      [
        { index: 0, objective: o(1.2) },
        { index: 1, objective: o(0.63) },
      ],
      'minimize',
    );
    assert.doesNotMatch(informative!.reason, /bounds nothing/);
    // other metrics have no such limit
    assert.doesNotMatch(bestTrial([{ index: 0, objective: { metric: 'valLoss', value: 2.5, epoch: 1 } }], 'minimize')!.reason, /bounds nothing/);
  });

  test('a model no better than chance on the source validation is passed over, and the reason names it', () => {
    const ten = Array.from({ length: 10 }, (_, i) => String(i));
    // the collapsed mmd 3 trial of docs/benchmarks.md's shrunk-cnn seed 1: valAccuracy 0.103 of 10 classes
    assert.equal(atChance({ valAccuracy: 0.103, classes: ten }), true);
    assert.equal(atChance({ valAccuracy: 0.2, classes: ten.slice(0, 5) }), true, 'few-labels: 0.2 of 5 classes');
    assert.equal(atChance({ valAccuracy: 0.16, classes: ten }), false, 'more than 0.05 above 1/10');
    assert.equal(atChance({ valAccuracy: 0.1, classes: [] }), false, 'no class list: nothing to judge by');
    assert.equal(atChance({ classes: ten }), false, 'no valAccuracy');
    assert.equal(atChance(undefined), false);

    const o = (value: number) => ({ metric: 'errorBound', value, epoch: 4 });
    const trials = [
      { index: 0, objective: o(1.09), collapsed: false },
      { index: 1, objective: o(0.897), collapsed: true },
      { index: 2, objective: o(1.03), collapsed: false },
    ];
    const best = bestTrial(trials, 'minimize', { atChance: (t) => t.collapsed });
    assert.equal(best?.trial.index, 2);
    assert.match(
      best.reason,
      /of the 2 trials that reported it; the next best, trial 0, has 1.09; passed over as no better than chance on the source validation \(valAccuracy within 0.05 of 1\/classes\): trial 1;/,
    );
    // passed over, the pick is a vacuous bound again, and the reason says that too
    assert.match(best.reason, /bounds nothing here/);
    assert.equal(bestTrial(trials, 'minimize')?.trial.index, 1, 'without the check, the collapsed model wins');
    const allCollapsed = bestTrial(trials, 'minimize', { atChance: () => true });
    assert.equal(allCollapsed?.trial.index, 1);
    assert.match(allCollapsed.reason, /every trial's model is no better than chance on the source validation/);
  });

  test("errorBound: among the trials within the best one's standard error, the lowest valLoss (the one-standard-error rule)", () => {
    const o = (value: number) => ({ metric: 'errorBound', value, epoch: 12 });
    // the few-label sweep's case: 50 validation labels, so bounds 0.02 apart are one label apart
    const metrics = [
      { errorBound: 0.2, errorBoundStandardError: 0.054, valLoss: 0.74, valAccuracy: 0.8 },
      { errorBound: 0.18, errorBoundStandardError: 0.054, valLoss: 0.72, valAccuracy: 0.82 },
      { errorBound: 0.2, errorBoundStandardError: 0.057, valLoss: 0.69, valAccuracy: 0.8 },
      { errorBound: 0.24, errorBoundStandardError: 0.06, valLoss: 0.6, valAccuracy: 0.76 },
    ];
    const trials = metrics.map((m, index) => ({ index, objective: o(m.errorBound) }));
    // the sweep's pick, each trial's metrics read from `table`
    const pick = (metric: string, ranked: Ranked[], goal: 'minimize' | 'maximize', table: Record<string, unknown>[]) =>
      bestTrial(
        ranked,
        goal,
        selectionFor(metric, (t: Ranked) => table[t.index]),
      );
    const best = pick('errorBound', trials, 'minimize', metrics);
    // within 0.18 + 0.054 = 0.234: trials 0, 1 and 2; trial 3's lower valLoss is outside
    assert.equal(best?.trial.index, 2);
    assert.match(
      best.reason,
      /^trial 2 has the lowest valLoss \(0.69\) of the 3 trials within one standard error \(0.054\) of the lowest errorBound \(trial 1, 0.18 at epoch 12\), which errorBound alone does not tell apart \(Breiman's one-standard-error rule\); its errorBound is 0.2/,
    );
    // a trial that reports no standard error (a job from before it was reported) is ranked by errorBound alone
    const bare = metrics.map(({ errorBound, valLoss }) => ({ errorBound, valLoss }));
    assert.equal(pick('errorBound', trials, 'minimize', bare)?.trial.index, 1);
    // other objectives have no such rule
    const byAccuracy = metrics.map((m, index) => ({ index, objective: { metric: 'valAccuracy', value: m.valAccuracy, epoch: 12 } }));
    assert.equal(pick('valAccuracy', byAccuracy, 'maximize', metrics)?.trial.index, 1);
    // when a tight standard error leaves the best alone, it stays the pick
    const tight = metrics.map((m) => ({ ...m, errorBoundStandardError: 0.012 }));
    const alone = pick('errorBound', trials, 'minimize', tight);
    assert.equal(alone?.trial.index, 1);
    assert.match(alone.reason, /^trial 1 has the lowest valLoss \(0.72\) of the 1 trial within one standard error \(0.012\)/);
    // a pick of 1 or more within the standard error of a lowest bound below 1: the bound still says something
    const edge = [
      { errorBound: 0.98, errorBoundStandardError: 0.05, valLoss: 0.9 },
      { errorBound: 1.02, errorBoundStandardError: 0.05, valLoss: 0.5 },
    ];
    const near = pick(
      'errorBound',
      edge.map((m, index) => ({ index, objective: o(m.errorBound) })),
      'minimize',
      edge,
    );
    assert.equal(near?.trial.index, 1);
    assert.doesNotMatch(near.reason, /bounds nothing/);
  });

  test("median stopping: stops a trial below the others' median, only after grace and with enough others", () => {
    const rule = { goal: 'maximize' as const, minTrials: 2, graceEpochs: 1 };
    const others = [
      [0.5, 0.7],
      [0.6, 0.8],
    ];
    assert.equal(medianStop([0.1], others, rule), null, 'within the grace epoch');
    assert.match(medianStop([0.1, 0.2], others, rule) ?? '', /median 0.65/);
    assert.equal(medianStop([0.1, 0.9], others, rule), null, 'its best is above the median');
    assert.equal(medianStop([0.1, 0.2], [[0.5, 0.7]], rule), null, 'too few others reached epoch 2');
    assert.match(
      medianStop(
        [2, 1.9],
        others.map((c) => c.map((v) => 1 - v)),
        { ...rule, goal: 'minimize' },
      ) ?? '',
      /above the median/,
    );
  });

  test('ASHA: rungs at minEpochs x eta^k; a trial goes on at a rung only in the top 1/eta of the others there', () => {
    const rule = { goal: 'maximize' as const, minEpochs: 1, reductionFactor: 2 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].filter((e) => isRung(e, rule)),
      [1, 2, 4, 8],
    );
    assert.deepEqual(
      [1, 2, 3, 6, 9, 18, 27].filter((e) => isRung(e, { minEpochs: 2, reductionFactor: 3 })),
      [2, 6, 18],
    );
    const others = [
      [0.2, 0.3, 0.4],
      [0.4, 0.5, 0.6],
      [0.6, 0.7, 0.8],
    ];
    // epoch 1: the others' values 0.2, 0.4, 0.6; the top half starts at the median 0.4
    assert.match(ashaStop([0.3], others, rule) ?? '', /epoch 1 \(a rung\), 0.3, is below 0.4, the cutoff of the best 1\/2 of 3 other trials/);
    assert.equal(ashaStop([0.5], others, rule), null, 'in the top half');
    assert.equal(ashaStop([0.5, 0.1, 0.9], others, rule), null, 'epoch 3 is no rung: not judged there');
    assert.match(ashaStop([0.5, 0.1], others, rule) ?? '', /epoch 2/, 'judged by its value at the rung, not its best');
    assert.equal(ashaStop([0.1], [], rule), null, 'no other trial reached the rung: it goes on');
    assert.equal(ashaStop([0.1, 0.1], [[0.9]], rule), null, 'the others that did not reach epoch 2 do not count there');
    // eta 3 keeps the top third: the cutoff is the 2/3 quantile (0.4 + 1/3 of the step 0.4-0.6 at epoch 1)
    assert.match(ashaStop([0.45], others, { ...rule, reductionFactor: 3 }) ?? '', /below 0.466667/);
    assert.equal(ashaStop([0.5], others, { ...rule, reductionFactor: 3 }), null, 'in the top third');
    // minimize: the cutoff is the 1/eta quantile, and a value above it stops
    const losses = others.map((c) => c.map((v) => 1 - v));
    assert.match(ashaStop([0.7], losses, { ...rule, goal: 'minimize' }) ?? '', /above 0.6/);
    assert.equal(ashaStop([0.5], losses, { ...rule, goal: 'minimize' }), null);
  });
});
