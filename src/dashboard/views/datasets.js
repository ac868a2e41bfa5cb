// The dataset list.
import { fmtNum, fmtTime, h, statusBadge } from '../dom.js';
import { listView } from '../list-view.js';

const LIMIT = 200;

function row(d) {
  return h(
    'tr',
    { 'data-dataset-id': d.id },
    h('td', {}, h('a', { href: `#/datasets/${d.id}`, class: 'mono' }, d.id)),
    h('td', {}, d.name),
    h('td', {}, statusBadge(d.status)),
    h('td', {}, fmtNum(d.numExamples)),
    h('td', {}, fmtNum(d.numClasses)),
    h('td', {}, d.featureShape ? `[${d.featureShape.join(', ')}]` : '–'),
    h('td', {}, fmtTime(d.createdAt)),
  );
}

export function datasetsView(main) {
  return listView(main, {
    heading: [h('h1', {}, 'Datasets'), h('a', { class: 'button', href: '#/upload' }, 'Upload a dataset')],
    id: 'datasets',
    columns: ['Dataset', 'Name', 'Status', 'Examples', 'Classes', 'Feature shape', 'Created'],
    path: () => `/v1/datasets?limit=${LIMIT}`,
    limit: LIMIT,
    row,
    empty: () => 'No datasets yet: upload one on the Upload page, with POST /v1/datasets (see the API docs) or `tfjs-adapt datasets upload`.',
    noun: 'datasets',
  }).stop;
}
