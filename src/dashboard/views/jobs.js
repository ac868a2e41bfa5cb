// The job list: newest first, filtered by status and type, refreshed while it is on screen.
import { fmtTime, h, jobFraction, progressBar, progressCaption, statusBadge } from '../dom.js';
import { listView } from '../list-view.js';

const REFRESH_MS = 2000;
const LIMIT = 100;
const STATUSES = ['', 'queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'];
const TYPES = ['', 'train', 'finetune', 'domain_adaptation', 'evaluate', 'predict'];

function row(job) {
  return h(
    'tr',
    { 'data-job-id': job.id },
    h('td', {}, h('a', { href: `#/jobs/${job.id}`, class: 'mono' }, job.id)),
    h('td', {}, statusBadge(job.status)),
    h('td', {}, job.type),
    h('td', { class: 'wide' }, progressBar(jobFraction(job), progressCaption(job))),
    h('td', {}, job.backend ?? '–'),
    h('td', { title: job.createdAt }, fmtTime(job.createdAt)),
  );
}

export function jobsView(main) {
  const filters = { status: '', type: '' };
  const select = (name, values) =>
    h(
      'label',
      {},
      `${name} `,
      h(
        'select',
        {
          onchange: (e) => {
            filters[name] = e.target.value;
            list.refresh();
          },
        },
        values.map((v) => h('option', { value: v }, v || 'any')),
      ),
    );
  const list = listView(main, {
    heading: [
      h('h1', {}, 'Jobs'),
      h('div', { class: 'filters' }, select('status', STATUSES), select('type', TYPES), h('a', { class: 'button', href: '#/new' }, 'New job')),
    ],
    id: 'jobs',
    columns: ['Job', 'Status', 'Type', 'Progress', 'Backend', 'Created'],
    path: () => {
      const q = new URLSearchParams({ limit: String(LIMIT) });
      if (filters.status) q.set('status', filters.status);
      if (filters.type) q.set('type', filters.type);
      return `/v1/jobs?${q}`;
    },
    limit: LIMIT,
    row,
    // "yet" would mislead where the filters hide jobs that exist
    empty: () =>
      filters.status || filters.type
        ? `No ${[filters.status, filters.type].filter(Boolean).join(' ')} jobs.`
        : ['No jobs yet. ', h('a', { href: '#/new' }, 'Create one'), ' or POST /v1/jobs.'],
    noun: 'jobs',
    refreshMs: REFRESH_MS,
  });
  return list.stop;
}
