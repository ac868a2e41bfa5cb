// The dataset list.
import { api } from '../api.js';
import { fmtNum, fmtTime, h, replace, statusBadge } from '../dom.js';

export function datasetsView(main) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  replace(
    main,
    h('div', { class: 'title-row' }, h('h1', {}, 'Datasets'), h('a', { class: 'button', href: '#/upload' }, 'Upload a dataset')),
    h(
      'table',
      { class: 'list', id: 'datasets' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Dataset', 'Name', 'Status', 'Examples', 'Classes', 'Feature shape', 'Created'].map((c) => h('th', {}, c)),
        ),
      ),
      body,
    ),
    note,
  );
  let stopped = false;
  api('GET', '/v1/datasets?limit=200').then(
    (page) => {
      if (stopped) return;
      replace(
        body,
        page.data.length === 0
          ? h(
              'tr',
              {},
              h(
                'td',
                { colspan: 7, class: 'muted' },
                'No datasets yet: upload one on the Upload page, with POST /v1/datasets (see the API docs) or `tfjs-adapt datasets upload`.',
              ),
            )
          : page.data.map((d) =>
              h(
                'tr',
                { 'data-dataset-id': d.id },
                h('td', {}, h('a', { href: `#/datasets/${d.id}`, class: 'mono' }, d.id)),
                h('td', {}, d.name),
                h('td', {}, statusBadge(d.status)),
                h('td', {}, fmtNum(d.numExamples)),
                h('td', {}, fmtNum(d.numClasses)),
                h('td', {}, d.featureShape ? `[${d.featureShape.join(', ')}]` : '–'),
                h('td', {}, fmtTime(d.createdAt)),
              ),
            ),
      );
      if (page.hasMore) replace(note, 'Showing the newest 200 datasets.');
    },
    (err) => {
      replace(note, `Could not load the datasets: ${err.message}`);
      note.classList.add('error');
    },
  );
  return () => {
    stopped = true;
  };
}
