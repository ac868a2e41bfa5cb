// A list page (jobs, sweeps, datasets): a title row, a table of the newest records with a row per
// record, and a note under it for "showing the newest N" or the error; refreshed while on
// screen when `refreshMs` is given.
import { api } from './api.js';
import { h, replace } from './dom.js';

/**
 * `o`: `heading` (the title row's children), `id` (the table's), `columns`, `path()` (the
 * GET to load, with `?limit=`), `limit`, `row(record)`, `empty()` (the one cell's content when
 * there is none: a function, since what to say can depend on the page's filters), `noun` (plural, for the note), `refreshMs` (optional).
 * Returns `refresh()` (load again now) and `stop()` (the view is left).
 */
export function listView(main, o) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  replace(
    main,
    h('div', { class: 'title-row' }, ...o.heading),
    h(
      'table',
      { class: 'list', id: o.id },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          o.columns.map((c) => h('th', {}, c)),
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
    try {
      const page = await api('GET', o.path());
      if (stopped) return;
      replace(body, page.data.length ? page.data.map(o.row) : h('tr', {}, h('td', { colspan: o.columns.length, class: 'muted' }, o.empty())));
      replace(note, page.hasMore ? `Showing the newest ${o.limit} ${o.noun}.` : '');
      note.classList.remove('error');
    } catch (err) {
      replace(note, `Could not load the ${o.noun}: ${err.message}`);
      note.classList.add('error');
    }
    if (!stopped && o.refreshMs) timer = setTimeout(refresh, document.hidden ? o.refreshMs * 5 : o.refreshMs);
  }
  refresh();
  return {
    refresh,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
