// A confusion matrix as a shaded table: rows are the true classes, columns the predicted ones.
import { fmtNum, h } from './dom.js';

/** Nothing when the job reported no matrix (rows of counts). */
export function confusionMatrix(rows, classes) {
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Array.isArray(r) && r.length === rows.length)) return null;
  const names = Array.isArray(classes) && classes.length === rows.length ? classes : rows.map((_, i) => String(i));
  const max = Math.max(1, ...rows.flat());
  return [
    h('h2', {}, 'Confusion matrix'),
    h('p', { class: 'muted' }, 'Rows: true class; columns: predicted class (test set).'),
    h(
      'table',
      { class: 'matrix' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, ''),
          names.map((n) => h('th', {}, n)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((r, i) =>
          h(
            'tr',
            {},
            h('th', {}, names[i]),
            r.map((v, j) => {
              const share = v / max;
              return h(
                'td',
                {
                  class: i === j ? 'diag' : '',
                  style: { background: `rgba(${i === j ? '31,95,191' : '217,115,13'},${(0.08 + 0.85 * share).toFixed(3)})`, color: share > 0.55 ? '#fff' : '' },
                },
                fmtNum(v),
              );
            }),
          ),
        ),
      ),
    ),
  ];
}
