// One model: what it takes and its classes, and a drop zone: an image dropped (or chosen) on the
// page is sent to POST /v1/models/{id}/predict and its classes shown, most probable first.
import { api, apiForm } from '../api.js';
import { dropZone, fmtNum, fmtTime, h, replace, statusBadge } from '../dom.js';

function predictionTable(file, prediction) {
  return h(
    'figure',
    { class: 'prediction', 'data-file': file.name },
    h('img', { src: URL.createObjectURL(file), alt: file.name }),
    h(
      'figcaption',
      {},
      h('div', { class: 'mono' }, file.name),
      h(
        'table',
        { class: 'counts' },
        h(
          'tbody',
          {},
          prediction.classes.map((c) =>
            h(
              'tr',
              { 'data-class': c.class },
              h('th', {}, c.class),
              h('td', { class: 'bar-cell' }, h('div', { class: 'bar', style: { width: `${100 * c.probability}%` } })),
              h('td', { class: 'num' }, `${(100 * c.probability).toFixed(1)}%`),
            ),
          ),
        ),
      ),
    ),
  );
}

export function modelView(main, id) {
  const results = h('div', { class: 'predictions', id: 'predictions' });
  const problem = h('div', { id: 'predict-problem' });

  async function predict(files) {
    const images = [...files].filter((f) => f.type.startsWith('image/') || /\.(png|jpe?g|webp|gif)$/i.test(f.name));
    replace(problem);
    if (images.length === 0) {
      replace(problem, h('p', { class: 'notice error' }, 'Drop PNG, JPEG, WebP or GIF images.'));
      return;
    }
    const form = new FormData();
    form.append('topK', '5');
    for (const f of images) form.append('image', f, f.name);
    try {
      const answer = await apiForm('POST', `/v1/models/${encodeURIComponent(id)}/predict`, form);
      replace(
        results,
        answer.predictions.map((p, i) => predictionTable(images[i], p)),
      );
    } catch (err) {
      replace(problem, h('p', { class: 'notice error' }, `Could not predict: ${err.message}`));
    }
  }

  const input = h('input', { type: 'file', accept: 'image/*', multiple: true, id: 'predict-input', onchange: () => predict(input.files) });
  const zone = dropZone({ id: 'drop-zone' }, (dataTransfer) => predict(dataTransfer.files), 'Drop images here to see what the model makes of them, or ', input);

  (async () => {
    let m;
    try {
      m = await api('GET', `/v1/models/${encodeURIComponent(id)}`);
    } catch (err) {
      replace(
        main,
        h('h1', {}, 'Model'),
        h('p', { class: 'notice error' }, err.status === 404 ? `No model has the id ${id}.` : `Could not load the model: ${err.message}`),
      );
      return;
    }
    replace(
      main,
      h('div', { class: 'title-row' }, h('h1', {}, m.name), statusBadge(m.status)),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'id'),
        h('dd', { class: 'mono' }, m.id),
        h('dt', {}, 'input shape'),
        h('dd', {}, m.inputShape ? `[${m.inputShape.join(', ')}]` : '–'),
        h('dt', {}, 'classes'),
        h('dd', {}, m.classes ? m.classes.join(', ') : '–'),
        h('dt', {}, 'trained by'),
        h('dd', {}, m.jobId ? h('a', { href: `#/jobs/${m.jobId}` }, m.jobId) : 'uploaded'),
        h('dt', {}, 'test accuracy'),
        h('dd', {}, fmtNum(m.metrics?.testAccuracy)),
        h('dt', {}, 'created'),
        h('dd', {}, fmtTime(m.createdAt)),
      ),
      h('h2', {}, 'Predict'),
      m.status === 'ready' ? zone : h('p', { class: 'muted' }, `The model is ${m.status}.`),
      problem,
      results,
    );
  })();
}
