// Live loss and accuracy charts (uPlot) fed by a job's progress and metrics events.
import { h } from './dom.js';

const COLORS = { batch: '#9db4d6', train: '#1f5fbf', val: '#d9730d' };

function baseOptions(title, series, width) {
  return {
    title,
    width,
    height: 240,
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: false } },
    axes: [{ label: 'epoch' }, {}],
    legend: { live: true },
    series: [{ label: 'epoch', value: (_u, v) => (v === null || v === undefined ? '–' : v.toFixed(2)) }, ...series],
  };
}

const line = (label, stroke, opts = {}) => ({
  label,
  stroke,
  width: 2,
  spanGaps: true,
  value: (_u, v) => (v === null || v === undefined ? '–' : v.toPrecision(4)),
  ...opts,
});

/**
 * Loss: x is the fractional epoch (epoch - 1 + step / steps); each progress event adds a
 * batch-loss point, each metrics event the epoch's train and validation loss at x = epoch.
 * Accuracy: one point per epoch. A retried or resumed attempt goes back to its last
 * checkpoint, and so do the charts (`truncateAfter`).
 */
export class TrainingCharts {
  constructor(container) {
    this.lossEl = h('div', { class: 'chart', 'data-chart': 'loss', 'data-points': 0 });
    this.accEl = h('div', { class: 'chart', 'data-chart': 'accuracy', 'data-points': 0 });
    container.append(this.lossEl, this.accEl);
    this.plots = [];
    this.pending = false;
    this.reset();
    if (!window.uPlot) {
      container.append(h('p', { class: 'error' }, 'The chart library (uPlot) did not load; the figures are still in the events log below.'));
      return;
    }
    const width = this.width();
    this.loss = new window.uPlot(
      baseOptions(
        'Loss',
        [
          line('batch loss', COLORS.batch, { width: 1 }),
          line('train loss', COLORS.train, { points: { show: true } }),
          line('val loss', COLORS.val, { points: { show: true } }),
        ],
        width,
      ),
      this.lossData,
      this.lossEl,
    );
    this.acc = new window.uPlot(
      baseOptions(
        'Accuracy',
        [line('train accuracy', COLORS.train, { points: { show: true } }), line('val accuracy', COLORS.val, { points: { show: true } })],
        width,
      ),
      this.accData,
      this.accEl,
    );
    this.plots = [this.loss, this.acc];
    this.resizer = new ResizeObserver(() => {
      const w = this.width();
      for (const p of this.plots) if (Math.abs(p.width - w) > 4) p.setSize({ width: w, height: 240 });
    });
    this.resizer.observe(container);
  }

  /** the plot fills its grid cell (less the cell's padding) */
  width() {
    return Math.max(240, Math.floor(this.lossEl.clientWidth || 560) - 10);
  }

  reset() {
    // columns: x, batch loss, epoch train loss, val loss
    this.lossData = [[], [], [], []];
    this.accData = [[], [], []];
    this.schedule();
  }

  /** Drops every point after `epoch`: a new attempt starts again from its last checkpoint (0: from scratch). */
  truncateAfter(epoch) {
    for (const data of [this.lossData, this.accData]) {
      const keep = data[0].findIndex((x) => x > epoch + 1e-9);
      if (keep >= 0) for (const col of data) col.length = keep;
    }
    this.schedule();
  }

  /** x of a point in the loss chart, merging a point that lands on an existing x */
  row(data, x) {
    const xs = data[0];
    let i = xs.length;
    while (i > 0 && xs[i - 1] > x) i--;
    if (i > 0 && Math.abs(xs[i - 1] - x) < 1e-9) return i - 1;
    for (const col of data) col.splice(i, 0, null);
    xs[i] = x;
    return i;
  }

  add(ev) {
    const d = ev.data;
    if (ev.type === 'progress' && typeof d.loss === 'number' && d.steps) {
      const i = this.row(this.lossData, d.epoch - 1 + d.step / d.steps);
      this.lossData[1][i] = d.loss;
    } else if (ev.type === 'metrics') {
      const i = this.row(this.lossData, d.epoch);
      if (typeof d.loss === 'number') this.lossData[2][i] = d.loss;
      if (typeof d.valLoss === 'number') this.lossData[3][i] = d.valLoss;
      const j = this.row(this.accData, d.epoch);
      if (typeof d.accuracy === 'number') this.accData[1][j] = d.accuracy;
      if (typeof d.valAccuracy === 'number') this.accData[2][j] = d.valAccuracy;
    } else {
      return;
    }
    this.schedule();
  }

  /** one redraw per frame however fast events come (a late page replays the whole log at once) */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.lossEl.dataset.points = String(this.lossData[0].length);
      this.accEl.dataset.points = String(this.accData[0].length);
      this.loss?.setData(this.lossData);
      this.acc?.setData(this.accData);
    });
  }

  destroy() {
    this.resizer?.disconnect();
    for (const p of this.plots) p.destroy();
  }
}
