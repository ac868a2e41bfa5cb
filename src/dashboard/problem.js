// How the dashboard shows what the service refused or what failed: a request's problem+json with
// each field's JSON pointer, and a stored dataset's or model's `error`.
import { h } from './dom.js';

/** An ApiError: the problem's title and detail, then each `errors[]` entry at its pointer. */
export function problemNotice(err, doing) {
  const p = err.problem;
  const errors = p?.errors ?? [];
  return h(
    'div',
    { class: 'notice error problem', role: 'alert' },
    h('p', {}, `${doing}: `, errors.length ? (p.title ?? err.message) : err.message),
    errors.length > 0 &&
      h(
        'ul',
        { class: 'field-errors' },
        errors.map((e) => h('li', { 'data-pointer': e.pointer ?? '' }, e.pointer ? [h('code', {}, e.pointer), ' '] : null, e.detail)),
      ),
  );
}

/** A failed dataset's or model's `error`: its code and message, then where (a pointer, or the location's facts). */
export function artifactError(error) {
  const where = error.pointer
    ? h('code', { class: 'pointer' }, error.pointer)
    : error.location &&
      h(
        'span',
        { class: 'mono' },
        Object.entries(error.location)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      );
  return h('div', { class: 'notice error', 'data-code': error.code }, h('strong', {}, error.code), ': ', error.message, where && [' (', where, ')']);
}
