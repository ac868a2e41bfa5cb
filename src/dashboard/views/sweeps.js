// The sweep list: newest first, refreshed while it is on screen.
import { fmtNum, fmtTime, h, statusBadge } from '../dom.js';
import { listView } from '../list-view.js';

const REFRESH_MS = 2000;
const LIMIT = 50;

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
  return listView(main, {
    heading: [h('h1', {}, 'Sweeps')],
    id: 'sweeps',
    columns: ['Sweep', 'Status', 'Trials ended', 'Objective', 'Best', 'Created'],
    path: () => `/v1/sweeps?limit=${LIMIT}`,
    limit: LIMIT,
    row,
    empty: () => 'No sweeps yet: POST /v1/sweeps, or tfjs-adapt sweep create.',
    noun: 'sweeps',
    refreshMs: REFRESH_MS,
  }).stop;
}
