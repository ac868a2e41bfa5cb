// The base-model half of the upload page: model.json and its weight files to POST /v1/models as
// multipart (checked while the request waits: 201 ready, or 400 pointing into the files), or a
// URL to import (202 validating, then ready or failed with a pointer); followed to the end.
import { ApiError, api, apiUpload } from '../api.js';
import { dropZone, field, fmtBytes, h, replace } from '../dom.js';
import { uploadTracker } from '../upload-tracker.js';

const describe = (m) =>
  h(
    'p',
    { class: 'summary' },
    `Takes inputs of shape ${m.inputShape ? `[${m.inputShape.join(', ')}]` : '(free)'}; classes ${(m.classes ?? []).join(', ')}. `,
    h('a', { href: `#/models/${m.id}` }, 'Try it on images'),
    " or name it as a job's model.base.",
  );

/** A refusal of the form itself, shown like the service's own (a pointer at the field). */
const formProblem = (pointer, detail) => new ApiError('POST', '/v1/models', 400, { title: 'The form is not complete', detail, errors: [{ pointer, detail }] });

export function modelUploadPanel() {
  /** { modelJson: File, weights: File[] } or null */
  let chosen = null;
  const chosenNote = h('p', { id: 'model-chosen', 'aria-live': 'polite' }, 'No files chosen.');
  const name = h('input', { type: 'text', maxlength: 200, autocomplete: 'off', placeholder: '(from the file name)' });
  const url = h('input', { type: 'url', autocomplete: 'off', placeholder: 'https://…/model.json' });
  const preprocessing = h('input', { type: 'text', autocomplete: 'off', placeholder: '(what model.json says, if anything)' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Upload the model');
  const tracker = uploadTracker('model', describe);

  function choose(files) {
    const list = [...files];
    const jsons = list.filter((f) => /\.json$/i.test(f.name));
    if (jsons.length !== 1) {
      chosen = null;
      replace(chosenNote, `Choose exactly one model.json (got ${jsons.length}) and its weight files.`);
      chosenNote.classList.add('error');
      return;
    }
    const weights = list.filter((f) => f !== jsons[0]);
    chosen = { modelJson: jsons[0], weights };
    chosenNote.classList.remove('error');
    replace(
      chosenNote,
      `${jsons[0].name} and ${weights.length} weight file${weights.length === 1 ? '' : 's'} (${weights.map((f) => f.name).join(', ') || 'none'}), ` +
        `${fmtBytes(list.reduce((n, f) => n + f.size, 0))}.`,
    );
  }

  const filesInput = h('input', { type: 'file', id: 'model-files', multiple: true, accept: '.json,.bin', onchange: () => choose(filesInput.files) });

  /** The request the form asks for: an import when a URL is given, else the files. */
  function send(onProgress) {
    const text = preprocessing.value.trim();
    let pre;
    try {
      pre = text ? JSON.parse(text) : undefined;
    } catch (err) {
      throw formProblem('/preprocessing', `is not JSON (${err.message}); expected e.g. {"range": [-1, 1]}`);
    }
    const given = name.value.trim();
    if (url.value.trim()) {
      if (chosen) throw formProblem('/source/url', 'is given as well as files: upload the files or import from the URL, not both');
      return api('POST', '/v1/models', { ...(given ? { name: given } : {}), source: { url: url.value.trim() }, ...(pre ? { preprocessing: pre } : {}) });
    }
    if (!chosen) throw formProblem('/modelJson', 'is required: choose model.json and its weight files, or give a URL to import');
    const form = new FormData();
    form.append('name', given || chosen.modelJson.name.replace(/\.json$/i, ''));
    if (text) form.append('preprocessing', text);
    form.append('modelJson', chosen.modelJson, chosen.modelJson.name);
    for (const w of chosen.weights) form.append('weights', w, w.name);
    return apiUpload('POST', '/v1/models', form, onProgress);
  }

  const el = h(
    'section',
    { id: 'upload-model', 'aria-labelledby': 'upload-model-title' },
    h('h2', { id: 'upload-model-title' }, 'Upload a base model'),
    h(
      'p',
      { class: 'muted' },
      'A TensorFlow.js LayersModel (e.g. converted from Keras): its model.json with every weight file its manifest names, or the URL of a model.json to import.',
    ),
    dropZone(
      { id: 'model-drop' },
      (dataTransfer) => choose(dataTransfer.files),
      h('p', {}, 'Drop model.json and its weight files here, or choose them:'),
      h('label', {}, 'files ', filesInput),
    ),
    chosenNote,
    h(
      'form',
      {
        id: 'model-upload',
        onsubmit: (ev) => {
          ev.preventDefault();
          submit.disabled = true;
          tracker.run(send).finally(() => (submit.disabled = false));
        },
      },
      h(
        'div',
        { class: 'fields' },
        field('model-name', 'name', name),
        field('model-url', 'or import from a URL', url, 'fetched by the service; its weight files beside it, as the manifest names them'),
        field(
          'model-preprocessing',
          'preprocessing',
          preprocessing,
          'JSON, the base\'s input convention: {"scale": s, "offset": o}, {"range": [-1, 1]} or {"mean": [...], "std": [...]}; wins over what model.json declares',
        ),
      ),
      h('div', { class: 'actions' }, submit),
    ),
    tracker.el,
  );
  return { el, stop: tracker.stop };
}
