// One dataset: its shape and preprocessing, examples per class, and example images.
import { api } from '../api.js';
import { fmtNum, fmtTime, h, replace, statusBadge } from '../dom.js';
import { artifactError } from '../problem.js';

const PAGE = 48;

function classCounts(d) {
  if (!d.classes || !d.classCounts) return null;
  const max = Math.max(1, ...d.classCounts);
  return h(
    'table',
    { class: 'counts', id: 'class-counts' },
    h(
      'tbody',
      {},
      d.classes.map((c, i) =>
        h(
          'tr',
          { 'data-class': c },
          h('th', {}, c),
          h('td', { class: 'bar-cell' }, h('div', { class: 'bar', style: { width: `${(100 * d.classCounts[i]) / max}%` } })),
          h('td', { class: 'num' }, fmtNum(d.classCounts[i])),
        ),
      ),
    ),
  );
}

export function datasetView(main, id) {
  let stopped = false;
  let timer;
  const examples = h('div', { class: 'examples', id: 'examples' });
  const more = h('button', { onclick: () => loadExamples() }, 'More examples');
  let offset = 0;

  async function loadExamples() {
    more.disabled = true;
    try {
      const page = await api('GET', `/v1/datasets/${encodeURIComponent(id)}/examples?offset=${offset}&limit=${PAGE}&features=false`);
      if (stopped) return;
      for (const ex of page.data) {
        examples.append(
          h(
            'figure',
            { class: 'example', 'data-index': ex.index },
            ex.image ? h('img', { src: ex.image, alt: `example ${ex.index}: ${ex.class}` }) : h('div', { class: 'no-image' }, '…'),
            h('figcaption', {}, ex.class),
          ),
        );
      }
      offset += page.data.length;
      more.hidden = offset >= page.total;
      more.disabled = false;
    } catch (err) {
      // an older service has no examples route: the rest of the page still stands
      more.hidden = true;
      examples.append(h('p', { class: 'muted' }, err.status === 404 ? 'This service does not serve examples.' : `Could not load examples: ${err.message}`));
    }
  }

  async function load() {
    let d;
    try {
      d = await api('GET', `/v1/datasets/${encodeURIComponent(id)}`);
    } catch (err) {
      replace(
        main,
        h('h1', {}, 'Dataset'),
        h('p', { class: 'notice error' }, err.status === 404 ? `No dataset has the id ${id}.` : `Could not load the dataset: ${err.message}`),
      );
      return;
    }
    if (stopped) return;
    const shape = (s) => (s ? `[${s.join(', ')}]` : '–');
    replace(
      main,
      h('div', { class: 'title-row' }, h('h1', {}, d.name, ' ', h('span', { class: 'mono muted' }, d.id)), statusBadge(d.status)),
      d.error && artifactError(d.error),
      h(
        'dl',
        { class: 'facts' },
        [
          ['examples', fmtNum(d.numExamples)],
          ['classes', fmtNum(d.numClasses)],
          ['feature shape', shape(d.featureShape)],
          ['image shape', shape(d.imageShape)],
          ['stored as', d.featureDtype ?? '–'],
          [
            'preprocessing',
            d.preprocessing
              ? `x × ${fmtNum(d.preprocessing.scale)} ${d.preprocessing.offset < 0 ? '−' : '+'} ${fmtNum(Math.abs(d.preprocessing.offset))}`
              : '–',
          ],
          ['created', fmtTime(d.createdAt)],
        ].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))),
      ),
      h('details', {}, h('summary', {}, 'Source'), h('pre', { class: 'spec' }, JSON.stringify(d.source, null, 2))),
      d.status === 'ready' && [h('h2', {}, 'Examples per class'), classCounts(d), h('h2', {}, 'Examples'), examples, more],
    );
    if (d.status === 'ready') loadExamples();
    // uploads are converted in the background: look again until they settle
    else if (d.status === 'validating') timer = setTimeout(load, 1000);
  }
  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
