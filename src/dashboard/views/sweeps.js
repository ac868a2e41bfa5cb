// The sweep list: newest first, refreshed while it is on screen.
import { api } from '../api.js';
import { fmtNum, fmtTime, h, replace, statusBadge } from '../dom.js';

const REFRESH_MS = 2000;

function row(s) {
  const done = s.trials.filter((t) => ['succeeded', 'failed', 'cancelled'].includes(t.status)).length;
  return h(
    'tr',
    { 'data-sweep-id': s.id },
    h('td', {}, h('a', { href: `#/sweeps/${s.id}`, class: 'mono' }, s.id)),
    h('td', {}, statusBadge(s.status)),
    h('td', {}, `${done}/${s.trials.length}`),
    h('td', {}, `${s.goal} ${s.spec.objective.metric}`),
    h('td', {}, s.best ? fmtNum(s.best.objective.value) : '–'),
    h('td', { title: s.createdAt }, fmtTime(s.createdAt)),
  );
}

export function sweepsView(main) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  replace(
    main,
    h('div', { class: 'title-row' }, h('h1', {}, 'Sweeps')),
    h(
      'table',
      { class: 'list', id: 'sweeps' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Sweep', 'Status', 'Trials ended', 'Objective', 'Best', 'Created'].map((c) => h('th', {}, c)),
        ),
      ),
      body,
    ),
    note,
  );
  let timer;
  let stopped = false;
  async function refresh() {
    try {
      const page = await api('GET', '/v1/sweeps?limit=50');
      if (stopped) return;
      replace(
        body,
        page.data.length
          ? page.data.map(row)
          : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No sweeps yet: POST /v1/sweeps, or tfjs-adapt sweep create.')),
      );
      replace(note, page.hasMore ? 'Showing the newest 50 sweeps.' : '');
      note.classList.remove('error');
    } catch (err) {
      replace(note, `Could not load the sweeps: ${err.message}`);
      note.classList.add('error');
    }
    if (!stopped) timer = setTimeout(refresh, document.hidden ? REFRESH_MS * 5 : REFRESH_MS);
  }
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
