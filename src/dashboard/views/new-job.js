// Create a job from a JSON spec. The API's validation errors (problem+json `errors[].pointer`)
// are drawn on the line of the offending field, beside it, and listed below the editor.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { lineOf, lineOfPointer } from '../json-locate.js';

const DRAFT_KEY = 'tfjs-adapt-draft-spec';

function template(datasets) {
  const ready = datasets.filter((d) => d.status === 'ready');
  const train = ready.find((d) => /train/i.test(d.name)) ?? ready[0];
  const test = ready.find((d) => /test/i.test(d.name) && d !== train);
  return {
    type: 'train',
    model: { architecture: { kind: 'mlp', hidden: [128], activation: 'linear' } },
    data: { train: train?.id ?? 'ds_...', ...(test ? { test: test.id } : {}) },
    hyperparameters: { epochs: 10, batchSize: 64, seed: 1, optimizer: { name: 'sgd', learningRate: 0.001, momentum: 0.9 } },
  };
}

export function newJobView(main) {
  const editor = h('textarea', { id: 'spec', spellcheck: false, wrap: 'off', autocomplete: 'off', 'aria-label': 'job spec (JSON)' });
  const marks = h('div', { class: 'marks', 'aria-hidden': 'true' });
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const errorList = h('ul', { class: 'field-errors', id: 'spec-errors' });
  const headline = h('p', { id: 'spec-problem', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create job');
  let errorsByLine = new Map();

  /** Redraws the line numbers and the marks layer: transparent copies of each line, the error after it. */
  function paint() {
    const lines = editor.value.split('\n');
    replace(
      gutter,
      lines.map((_, i) => h('div', { class: errorsByLine.has(i + 1) ? 'bad' : '' }, i + 1)),
    );
    replace(
      marks,
      lines.map((text, i) => {
        const errs = errorsByLine.get(i + 1);
        return h(
          'div',
          { class: `line${errs ? ' bad' : ''}`, 'data-line': i + 1 },
          h('span', { class: 'ghost' }, text || ' '),
          errs && h('span', { class: 'msg' }, `  ◀ ${errs.map((e) => e.label).join('; ')}`),
        );
      }),
    );
    syncScroll();
  }

  function syncScroll() {
    marks.scrollTop = gutter.scrollTop = editor.scrollTop;
    marks.scrollLeft = editor.scrollLeft;
  }

  function selectLine(line) {
    const lines = editor.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    const text = lines[line - 1] ?? '';
    const indent = text.length - text.trimStart().length;
    editor.focus();
    editor.setSelectionRange(start + indent, start + text.length);
  }

  /** errors: [{ pointer, detail, line? }] */
  function showErrors(title, errors) {
    errorsByLine = new Map();
    const items = errors.map((e) => {
      const where = e.line ? { line: e.line, exact: true } : lineOfPointer(editor.value, e.pointer);
      const label = where.exact || !e.pointer ? e.detail : `${e.pointer.split('/').pop()} ${e.detail}`;
      errorsByLine.set(where.line, [...(errorsByLine.get(where.line) ?? []), { label }]);
      return h(
        'li',
        { 'data-pointer': e.pointer ?? '', 'data-line': where.line },
        h(
          'a',
          {
            href: '#/new',
            onclick: (ev) => {
              ev.preventDefault();
              selectLine(where.line);
            },
          },
          `line ${where.line}`,
        ),
        ' ',
        e.pointer ? h('code', {}, e.pointer) : null,
        ' ',
        e.detail,
      );
    });
    replace(headline, title);
    headline.className = title ? 'notice error' : '';
    replace(errorList, items);
    paint();
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    let spec;
    try {
      spec = JSON.parse(editor.value);
    } catch (err) {
      const pos = /position (\d+)/.exec(err.message);
      showErrors('The spec is not valid JSON.', [{ pointer: null, detail: err.message, line: pos ? lineOf(editor.value, Number(pos[1])) : 1 }]);
      return;
    }
    submit.disabled = true;
    try {
      const job = await api('POST', '/v1/jobs', spec);
      sessionStorage.removeItem(DRAFT_KEY);
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      const p = err.problem;
      const fieldErrors = (p?.errors ?? []).filter((e) => !e.in || e.in === 'body');
      showErrors(p ? `${p.title}${fieldErrors.length ? '' : `: ${p.detail ?? ''}`}` : err.message, fieldErrors);
    } finally {
      submit.disabled = false;
    }
  }

  editor.addEventListener('input', () => {
    sessionStorage.setItem(DRAFT_KEY, editor.value);
    // an edit may move lines around: old marks would point at the wrong ones
    if (errorsByLine.size) showErrors('', []);
    else paint();
  });
  editor.addEventListener('scroll', syncScroll);
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Tab') {
      e.preventDefault();
      editor.setRangeText('  ', editor.selectionStart, editor.selectionEnd, 'end');
      editor.dispatchEvent(new Event('input'));
    }
  });

  const reset = h('button', { type: 'button', onclick: () => fill(true) }, 'Reset to the template');
  replace(
    main,
    h('h1', {}, 'New job'),
    h(
      'p',
      { class: 'muted' },
      'The job spec as POST /v1/jobs takes it (see ',
      h('a', { href: '/docs#/jobs' }, 'the API docs'),
      '). Errors are shown beside the field they concern.',
    ),
    h(
      'form',
      { id: 'new-job', onsubmit: onSubmit },
      h('div', { class: 'editor' }, gutter, h('div', { class: 'layers' }, marks, editor)),
      headline,
      errorList,
      h('div', { class: 'actions' }, submit, reset),
    ),
  );

  let stopped = false;
  async function fill(force) {
    const draft = sessionStorage.getItem(DRAFT_KEY);
    if (draft && !force) {
      editor.value = draft;
    } else {
      const page = await api('GET', '/v1/datasets?limit=50').catch(() => ({ data: [] }));
      if (stopped) return;
      editor.value = JSON.stringify(template(page.data), null, 2);
      sessionStorage.removeItem(DRAFT_KEY);
    }
    showErrors('', []);
  }
  fill(false);
  return () => {
    stopped = true;
  };
}
