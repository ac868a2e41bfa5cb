// One sweep: its status and best trial with why, what the validators without target labels would
// pick, the trials table, and per parameter a plot of each trial's objective against the
// parameter's value. Polled every 2 s while the sweep runs (a sweep changes once per trial epoch
// at most; its trials' own pages stream live).
import { api } from '../api.js';
import { fmtNum, h, replace, statusBadge } from '../dom.js';

const REFRESH_MS = 2000;
const show = (v) => (typeof v === 'number' ? fmtNum(v) : JSON.stringify(v));

/** The trial's value to plot: the finished model's objective, else the latest epoch's. */
const plotted = (t) => (t.objective ? t.objective.value : t.latest ? t.latest.value : null);

/**
 * A scatter of objective against one parameter. Numbers sit on their own axis (logarithmic for a
 * log-scale range); other values (strings, objects) each get a place on the x axis, labelled.
 */
function parameterPlot(sweep, pointer) {
  const el = h('div', { class: 'chart', 'data-chart': pointer, 'data-points': 0 });
  const points = sweep.trials.map((t) => ({ x: t.parameters[pointer], y: plotted(t) })).filter((p) => p.y !== null);
  el.dataset.points = String(points.length);
  if (!window.uPlot) return el;
  const numeric = points.every((p) => typeof p.x === 'number');
  const labels = numeric ? [] : [...new Set(sweep.trials.map((t) => JSON.stringify(t.parameters[pointer])))];
  const xs = points.map((p) => (numeric ? p.x : labels.indexOf(JSON.stringify(p.x))));
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const data = [order.map((i) => xs[i]), order.map((i) => points[i].y)];
  const log = sweep.spec.parameters[pointer].scale === 'log';
  new window.uPlot(
    {
      title: `${sweep.spec.objective.metric} vs ${pointer}`,
      width: 520,
      height: 240,
      scales: { x: { time: false, ...(log ? { distr: 3 } : {}), ...(numeric ? {} : { range: [-0.5, labels.length - 0.5] }) } },
      axes: [
        { label: pointer, ...(numeric ? {} : { values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (labels[t] ?? '') : '')) }) },
        { label: sweep.spec.objective.metric },
      ],
      legend: { show: false },
      series: [{}, { stroke: '#1f5fbf', paths: () => null, points: { show: true, size: 8, fill: '#1f5fbf' } }],
    },
    data,
    el,
  );
  return el;
}

/** What each validator without target labels would pick: where one parts from the best, the choice is worth a second look (docs/methods.md). */
function validatorPicks(sweep) {
  if (sweep.validatorPicks.length === 0) return '';
  const picks = sweep.validatorPicks.map((p) => `${p.validator} → trial ${p.index}${p.index === sweep.best?.index ? ' (the best)' : ''}`);
  return h('p', { id: 'validator-picks' }, `Validators without target labels pick: ${picks.join(', ')}.`);
}

function trialRow(sweep, t) {
  const best = sweep.best?.index === t.index;
  return h(
    'tr',
    { 'data-trial': t.index, class: best ? 'best' : '' },
    h('td', {}, String(t.index), best ? ' ★' : ''),
    h('td', {}, t.jobId ? h('a', { href: `#/jobs/${t.jobId}`, class: 'mono' }, t.jobId) : '–'),
    h('td', {}, statusBadge(t.status), t.stopped ? h('span', { class: 'muted', title: t.stopped.reason }, ` stopped at epoch ${t.stopped.epoch}`) : ''),
    ...Object.keys(sweep.spec.parameters)
      .sort()
      .map((p) => h('td', { class: 'mono' }, show(t.parameters[p]))),
    h(
      'td',
      { 'data-objective': '' },
      t.objective ? fmtNum(t.objective.value) : t.latest ? h('span', { class: 'muted' }, `${fmtNum(t.latest.value)} (epoch ${t.latest.epoch})`) : '–',
    ),
  );
}

export function sweepView(main, id) {
  let timer;
  let stopped = false;
  async function refresh() {
    let sweep;
    try {
      sweep = await api('GET', `/v1/sweeps/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!stopped) replace(main, h('h1', {}, 'Sweep'), h('p', { class: 'error' }, `Could not load sweep ${id}: ${err.message}`));
      return;
    }
    if (stopped) return;
    const pointers = Object.keys(sweep.spec.parameters).sort();
    replace(
      main,
      h(
        'div',
        { class: 'title-row' },
        h('h1', {}, 'Sweep ', h('span', { class: 'mono' }, sweep.id), ' ', statusBadge(sweep.status)),
        sweep.status === 'running'
          ? h(
              'button',
              {
                id: 'cancel-sweep',
                onclick: async () => {
                  await api('POST', `/v1/sweeps/${sweep.id}/cancel`).catch(() => undefined);
                  refresh();
                },
              },
              'Cancel',
            )
          : '',
      ),
      h(
        'p',
        {},
        `${sweep.spec.algorithm} search, ${sweep.trials.length} trials, ${sweep.spec.maxParallel} at once, seed ${sweep.spec.seed}; ${sweep.goal} ${sweep.spec.objective.metric}`,
      ),
      h('p', { id: 'best' }, sweep.best ? `Best: ${sweep.best.reason}.` : 'No trial has finished with an objective yet.'),
      validatorPicks(sweep),
      h(
        'table',
        { class: 'list', id: 'trials' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['#', 'Job', 'Status', ...pointers, sweep.spec.objective.metric].map((c) => h('th', {}, c)),
          ),
        ),
        h(
          'tbody',
          {},
          sweep.trials.map((t) => trialRow(sweep, t)),
        ),
      ),
      h(
        'div',
        { class: 'charts', id: 'parameter-plots' },
        pointers.map((p) => parameterPlot(sweep, p)),
      ),
    );
    if (sweep.status === 'running') timer = setTimeout(refresh, document.hidden ? REFRESH_MS * 5 : REFRESH_MS);
  }
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
