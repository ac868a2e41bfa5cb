// The job list: newest first, filtered by status and type, refreshed while it is on screen.
import { api } from '../api.js';
import { fmtTime, h, jobFraction, progressBar, progressCaption, replace, statusBadge } from '../dom.js';

const REFRESH_MS = 2000;
const STATUSES = ['', 'queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'];
const TYPES = ['', 'train', 'finetune', 'domain_adaptation', 'evaluate'];

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
            refresh();
          },
        },
        values.map((v) => h('option', { value: v }, v || 'any')),
      ),
    );
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  replace(
    main,
    h(
      'div',
      { class: 'title-row' },
      h('h1', {}, 'Jobs'),
      h('div', { class: 'filters' }, select('status', STATUSES), select('type', TYPES), h('a', { class: 'button', href: '#/new' }, 'New job')),
    ),
    h(
      'table',
      { class: 'list', id: 'jobs' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Job', 'Status', 'Type', 'Progress', 'Backend', 'Created'].map((c) => h('th', {}, c)),
        ),
      ),
      body,
    ),
    note,
  );

  let timer;
  let stopped = false;
  async function refresh() {
    clearTimeout(timer);
    const q = new URLSearchParams({ limit: '100' });
    if (filters.status) q.set('status', filters.status);
    if (filters.type) q.set('type', filters.type);
    try {
      const page = await api('GET', `/v1/jobs?${q}`);
      if (stopped) return;
      replace(
        body,
        page.data.length
          ? page.data.map(row)
          : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No jobs yet. ', h('a', { href: '#/new' }, 'Create one'), ' or POST /v1/jobs.')),
      );
      replace(note, page.hasMore ? 'Showing the newest 100 jobs.' : '');
      note.classList.remove('error');
    } catch (err) {
      replace(note, `Could not load the jobs: ${err.message}`);
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
