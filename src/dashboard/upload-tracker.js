// What becomes of an upload, shown as it happens: the bytes going out (a progress bar), then the
// dataset's or model's validation (polled until it is no longer `validating`), then the outcome: a
// link to what was made, or what the service refused and where (the JSON pointer).
import { api } from './api.js';
import { fmtBytes, h, progressBar, replace, statusBadge } from './dom.js';
import { artifactError, problemNotice } from './problem.js';

const POLL_MS = 1000;

/**
 * `kind`: 'dataset' | 'model'; `describe(artifact)`: what a ready one is worth saying.
 * `run(send)` starts an upload: `send(onProgress)` makes the request and resolves to the artifact.
 */
export function uploadTracker(kind, describe) {
  const transfer = h('div', { class: 'transfer' });
  const outcome = h('div', { class: 'outcome', role: 'status', 'aria-live': 'polite' });
  const el = h('div', { class: 'upload-status', 'data-kind': kind }, transfer, outcome);
  let timer;
  let run = 0;

  const progress = (sent, total) =>
    replace(transfer, progressBar(total ? sent / total : 0, total ? `sent ${fmtBytes(sent)} of ${fmtBytes(total)}` : `sent ${fmtBytes(sent)}`));

  function show(a) {
    const link = h('a', { href: `#/${kind}s/${a.id}` }, a.name, ' ', h('span', { class: 'mono muted' }, a.id));
    replace(
      outcome,
      h('p', { class: 'status-line' }, statusBadge(a.status), link),
      a.status === 'validating' && h('p', { class: 'muted' }, `The service is checking the ${kind}…`),
      a.status === 'ready' && describe(a),
      a.status === 'failed' && a.error && artifactError(a.error),
    );
  }

  async function follow(a, mine) {
    show(a);
    if (a.status !== 'validating') return;
    await new Promise((ok) => (timer = setTimeout(ok, POLL_MS)));
    if (mine !== run) return;
    return follow(await api('GET', `/v1/${kind}s/${encodeURIComponent(a.id)}`), mine);
  }

  return {
    el,
    async run(send) {
      const mine = ++run;
      clearTimeout(timer);
      replace(transfer);
      replace(outcome, h('p', { class: 'muted' }, 'Sending…'));
      try {
        const artifact = await send(progress);
        if (mine === run) await follow(artifact, mine);
      } catch (err) {
        if (mine === run) replace(outcome, problemNotice(err, `The ${kind} was not accepted`));
      }
    },
    stop() {
      run++;
      clearTimeout(timer);
    },
  };
}
