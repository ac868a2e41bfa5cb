// The dataset half of the upload page: an archive, or a folder of photos made into one in the
// browser (tar.js), sent to POST /v1/datasets as format `images` with the options the API's
// OpenAPI form documents for that format; then followed to `ready` or `failed`.
import { api, apiUpload } from '../api.js';
import { dropZone, field, fmtBytes, fmtNum, h, replace } from '../dom.js';
import { classCounts, photosOfDrop, photosOfInput } from '../photo-folder.js';
import { tarBlob } from '../tar.js';
import { uploadTracker } from '../upload-tracker.js';

const FORMAT = 'images';

/**
 * The options of the images format, from the upload form in /openapi.json: each option's
 * description starts with the formats it applies to ("idx, images: ..."), and an option of a
 * few values lists them as its enum.
 */
async function formatOptions() {
  const doc = await api('GET', '/openapi.json');
  const props = doc?.paths?.['/v1/datasets']?.post?.requestBody?.content?.['multipart/form-data']?.schema?.properties ?? {};
  return Object.entries(props).flatMap(([name, s]) => {
    const m = /^([a-z0-9, ]+): (.*)$/s.exec(s.description ?? '');
    // the docs' `code` marks read as plain text here
    return s.format !== 'binary' && m && m[1].split(', ').includes(FORMAT) ? [{ name, doc: m[2].replace(/`/g, ''), choices: s.enum }] : [];
  });
}

function optionControl(o) {
  const control = o.choices
    ? h(
        'select',
        { name: o.name },
        h('option', { value: '' }, '(default)'),
        o.choices.map((c) => h('option', { value: c }, c)),
      )
    : h('input', { name: o.name, type: 'text', autocomplete: 'off', placeholder: '(default)' });
  return field(`dataset-${o.name}`, o.name, control, o.doc);
}

const describe = (d) =>
  h(
    'p',
    { class: 'summary' },
    `${fmtNum(d.numExamples)} examples in ${fmtNum(d.numClasses)} classes (${(d.classes ?? []).join(', ')})`,
    d.imageShape ? `, images [${d.imageShape.join(', ')}]` : '',
    '.',
  );

export function datasetUploadPanel() {
  /** null, { archive: File }, or { folder: name, photos: [{ path, file }] } */
  let chosen = null;
  const chosenNote = h('p', { id: 'dataset-chosen', 'aria-live': 'polite' }, 'Nothing chosen yet.');
  const name = h('input', { type: 'text', required: true, maxlength: 200, autocomplete: 'off' });
  const options = h('div', { class: 'fields', id: 'dataset-options' }, h('p', { class: 'muted' }, 'Loading the options…'));
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Upload the dataset');
  const tracker = uploadTracker('dataset', describe);

  function choose(c, message) {
    chosen = c;
    replace(chosenNote, message);
    chosenNote.classList.toggle('error', !c);
    if (c && !name.value) name.value = c.archive ? c.archive.name.replace(/\.(zip|tar|tar\.gz|tgz)$/i, '') : c.folder;
  }

  function chooseFolder(photos) {
    if (photos.length === 0) return choose(null, 'The folder holds no PNG or JPEG files: expected one folder per class of photos.');
    const tops = new Set(photos.map((p) => p.path.split('/')[0]));
    const folder = tops.size === 1 && photos.every((p) => p.path.split('/').length >= 3) ? [...tops][0] : 'photos';
    const counts = Object.entries(classCounts(photos));
    choose(
      { folder, photos },
      `Folder ${folder}: ${photos.length} photos in ${counts.length} classes (${counts.map(([c, n]) => `${c} ${n}`).join(', ')}), ` +
        `${fmtBytes(photos.reduce((n, p) => n + p.file.size, 0))}, sent as one .tar archive.`,
    );
  }

  const chooseArchive = (file) => choose({ archive: file }, `Archive ${file.name}, ${fmtBytes(file.size)}.`);

  const archiveInput = h('input', {
    type: 'file',
    id: 'dataset-archive',
    accept: '.zip,.tar,.gz,.tgz',
    onchange: () => archiveInput.files[0] && chooseArchive(archiveInput.files[0]),
  });
  const folderInput = h('input', { type: 'file', id: 'dataset-folder', webkitdirectory: true, onchange: () => chooseFolder(photosOfInput(folderInput.files)) });

  async function onDrop(dataTransfer) {
    const files = [...dataTransfer.files];
    const photos = await photosOfDrop(dataTransfer);
    if (photos) chooseFolder(photos);
    else if (files.length === 1) chooseArchive(files[0]);
    else choose(null, 'Drop one archive, or a folder with one folder per class.');
  }

  function onSubmit(ev) {
    ev.preventDefault();
    if (!chosen) return choose(null, 'Choose an archive or a folder of photos first.');
    const form = new FormData();
    form.append('name', name.value.trim());
    form.append('format', FORMAT);
    for (const control of options.querySelectorAll('[name]')) if (control.value.trim()) form.append(control.name, control.value.trim());
    try {
      if (chosen.archive) form.append('file', chosen.archive, chosen.archive.name);
      else form.append('file', tarBlob(chosen.photos), `${chosen.folder}.tar`);
    } catch (err) {
      return choose(null, err.message);
    }
    submit.disabled = true;
    tracker.run((onProgress) => apiUpload('POST', '/v1/datasets', form, onProgress)).finally(() => (submit.disabled = false));
  }

  formatOptions().then(
    (list) => replace(options, list.map(optionControl)),
    (err) => replace(options, h('p', { class: 'muted' }, `The options could not be read (${err.message}); the service's defaults apply.`)),
  );

  const el = h(
    'section',
    { id: 'upload-dataset', 'aria-labelledby': 'upload-dataset-title' },
    h('h2', { id: 'upload-dataset-title' }, 'Upload a dataset'),
    h(
      'p',
      { class: 'muted' },
      'Photos with one folder per class (',
      h('code', {}, 'cat/001.jpg'),
      ', ',
      h('code', {}, 'dog/002.png'),
      '): a folder of them, or an archive (.zip, .tar or .tar.gz) holding them.',
    ),
    dropZone(
      { id: 'dataset-drop' },
      onDrop,
      h('p', {}, 'Drop an archive or a folder of photos here, or choose one:'),
      h('div', { class: 'choosers' }, h('label', {}, 'archive ', archiveInput), h('label', {}, 'folder ', folderInput)),
    ),
    chosenNote,
    h(
      'form',
      { id: 'dataset-upload', onsubmit: onSubmit },
      h('div', { class: 'fields' }, field('dataset-name', 'name', name)),
      h('h3', {}, 'How the images are stored'),
      options,
      h('div', { class: 'actions' }, submit),
    ),
    tracker.el,
  );
  return { el, stop: tracker.stop };
}
