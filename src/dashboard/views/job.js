// One job, live: status, progress, loss and accuracy charts, checkpoints, result and model
// downloads, and the event log, all fed by the job's SSE stream.
import { api, download, getToken } from '../api.js';
import { TrainingCharts } from '../charts.js';
import { confusionMatrix } from '../confusion-matrix.js';
import { fmtDuration, fmtNum, fmtTime, h, jobFraction, progressBar, progressCaption, replace, statusBadge } from '../dom.js';
import { followEvents } from '../event-stream.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const MAX_LOG_ROWS = 1000;
const FIRST_METRICS = ['loss', 'accuracy', 'valLoss', 'valAccuracy', 'testLoss', 'testAccuracy', 'samplesPerSecond', 'epochSeconds'];

/** testAccuracy -> test accuracy */
const words = (key) => key.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();

function metricCards(metrics, skip = []) {
  const keys = Object.keys(metrics || {}).filter((k) => !skip.includes(k) && typeof metrics[k] === 'number');
  keys.sort((a, b) => (FIRST_METRICS.indexOf(a) + 1 || 99) - (FIRST_METRICS.indexOf(b) + 1 || 99) || a.localeCompare(b));
  return h(
    'dl',
    { class: 'cards' },
    keys.map((k) => h('div', { 'data-metric': k, title: k }, h('dt', {}, words(k)), h('dd', {}, fmtNum(metrics[k])))),
  );
}

function summary(ev) {
  const d = ev.data;
  switch (ev.type) {
    case 'status': {
      const bits = [d.status];
      if (d.attempt) bits.push(`attempt ${d.attempt}`);
      if (d.retry) bits.push(`retrying after attempt ${d.retry.afterAttempt}`);
      if (d.reason) bits.push(d.reason);
      if (d.error) bits.push(`${d.error.code}: ${d.error.message}`);
      return bits.join(' · ');
    }
    case 'progress':
      return `epoch ${d.epoch}/${d.epochs} · step ${d.step}/${d.steps} · loss ${fmtNum(d.loss)}`;
    case 'metrics':
      return `epoch ${d.epoch} · ${Object.entries(d)
        .filter(([k]) => k !== 'epoch')
        .map(([k, v]) => `${k} ${fmtNum(v)}`)
        .join(' · ')}`;
    case 'checkpoint':
      return `epoch ${d.epoch}${d.step !== undefined ? ` · step ${d.step}` : ''}`;
    case 'log':
      return `${d.level && d.level !== 'info' ? `[${d.level}] ` : ''}${d.message ?? JSON.stringify(d)}`;
    default:
      return JSON.stringify(d);
  }
}

export function jobView(main, id) {
  const controller = new AbortController();
  const head = h('div', { class: 'title-row' });
  const facts = h('dl', { class: 'facts' });
  const progress = h('div', { id: 'job-progress' });
  const problem = h('div');
  const result = h('section', { id: 'result' });
  const latest = h('div', { id: 'latest-metrics' });
  const chartBox = h('div', { class: 'charts' });
  const matrix = h('section', { id: 'confusion' });
  const checkpointsBody = h('tbody');
  const showProgress = h('input', { type: 'checkbox', onchange: () => log.classList.toggle('show-progress', showProgress.checked) });
  const logBody = h('tbody');
  const log = h(
    'table',
    { class: 'list log', id: 'events' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['#', 'time', 'type', 'event'].map((c) => h('th', {}, c)),
      ),
    ),
    logBody,
  );
  const spec = h('pre', { class: 'spec' });
  // a plain link, unless there is a token to send: the browser streams such a download to disk
  const modelFile = (modelId, file, elementId) =>
    h(
      'a',
      {
        id: elementId,
        href: `/v1/models/${modelId}/${file}`,
        download: file,
        onclick: (e) => {
          if (!getToken()) return;
          e.preventDefault();
          download(`/v1/models/${modelId}/${file}`, file).catch((err) =>
            replace(problem, h('div', { class: 'notice error' }, `Could not download ${file}: ${err.message}`)),
          );
        },
      },
      file,
    );

  replace(
    main,
    head,
    facts,
    progress,
    problem,
    result,
    h('h2', {}, 'Training'),
    latest,
    chartBox,
    matrix,
    h('h2', {}, 'Checkpoints'),
    h(
      'table',
      { class: 'list', id: 'checkpoints' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Epoch', 'Step', 'Attempt', 'Metrics', 'Saved'].map((c) => h('th', {}, c)),
        ),
      ),
      checkpointsBody,
    ),
    h('div', { class: 'title-row' }, h('h2', {}, 'Events'), h('label', {}, showProgress, ' show progress events')),
    log,
    h('details', {}, h('summary', {}, 'Spec'), spec),
  );

  const charts = new TrainingCharts(chartBox);
  let job = null;
  let attempt = 0;
  let lastCheckpoint = 0;
  let stepsPerEpoch = 0;

  function renderJob() {
    replace(
      head,
      h('h1', {}, 'Job ', h('span', { class: 'mono' }, job.id)),
      h(
        'div',
        { class: 'filters' },
        statusBadge(job.status),
        (job.status === 'queued' || job.status === 'running') &&
          !job.cancelRequested &&
          h('button', { id: 'pause', disabled: job.pauseRequested, onclick: () => act('pause') }, job.pauseRequested ? 'Pausing…' : 'Pause'),
        job.status === 'paused' && h('button', { id: 'resume', onclick: () => act('resume') }, 'Resume'),
        !TERMINAL.has(job.status) &&
          h(
            'button',
            { id: 'cancel', class: 'danger', disabled: job.cancelRequested, onclick: () => act('cancel') },
            job.cancelRequested ? 'Stopping…' : 'Cancel',
          ),
      ),
    );
    const meta = Object.entries(job.spec.metadata || {});
    replace(
      facts,
      ...[
        ['type', job.type],
        ['backend', job.backend ?? '–'],
        ['attempt', job.attempt],
        ['created', fmtTime(job.createdAt)],
        ['started', fmtTime(job.startedAt)],
        ['finished', fmtTime(job.finishedAt)],
        ['duration', job.startedAt ? fmtDuration(job.startedAt, job.finishedAt) : '–'],
        ['train data', h('a', { href: `#/datasets/${job.spec.data.train}` }, job.spec.data.train)],
        ...meta.map(([k, v]) => [k, v]),
      ].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))),
    );
    renderProgress();
    replace(
      problem,
      job.error && job.status !== 'succeeded'
        ? h(
            'div',
            { class: `notice ${job.status === 'failed' ? 'error' : 'warn'}` },
            h('strong', {}, job.error.code),
            ': ',
            job.error.message,
            job.error.param ? h('span', { class: 'mono' }, ` (at ${job.error.param})`) : null,
          )
        : null,
    );
    if (job.result) {
      const m = job.result.metrics || {};
      replace(
        result,
        h('h2', {}, 'Result'),
        metricCards(m),
        h(
          'p',
          {},
          'Model ',
          h('a', { class: 'mono', href: `#/models/${job.result.modelId}`, id: 'model-link' }, job.result.modelId),
          ': ',
          modelFile(job.result.modelId, 'model.json', 'model-download'),
          ' · ',
          modelFile(job.result.modelId, 'weights.bin', 'weights-download'),
          h('span', { class: 'muted' }, ` — load with tf.loadLayersModel('${location.origin}/v1/models/${job.result.modelId}/model.json')`),
        ),
      );
      replace(matrix, confusionMatrix(m.confusionMatrix, m.classes));
    } else {
      replace(result);
    }
    // once there is a result its cards say it all; the latest epoch's are for a job under way
    if (job.result) replace(latest);
    else if (job.metrics) replace(latest, metricCards(job.metrics, ['epoch']));
    spec.textContent = JSON.stringify(job.spec, null, 2);
  }

  function renderProgress() {
    replace(progress, progressBar(jobFraction(job), progressCaption(job)));
  }

  async function refreshJob() {
    job = await api('GET', `/v1/jobs/${encodeURIComponent(id)}`);
    renderJob();
  }

  async function refreshCheckpoints() {
    const { data } = await api('GET', `/v1/jobs/${encodeURIComponent(id)}/checkpoints`);
    replace(
      checkpointsBody,
      data.length === 0
        ? h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'None yet.'))
        : data.map((c) =>
            h(
              'tr',
              {},
              h('td', {}, c.epoch),
              h('td', {}, c.step),
              h('td', {}, c.attempt),
              h(
                'td',
                {},
                Object.entries(c.metrics)
                  .map(([k, v]) => `${k} ${fmtNum(v)}`)
                  .join(' · '),
              ),
              h('td', {}, fmtTime(c.createdAt)),
            ),
          ),
    );
  }

  /** cancel, pause or resume; the stream then brings the status events that follow */
  async function act(action) {
    try {
      job = await api('POST', `/v1/jobs/${encodeURIComponent(id)}/${action}`);
      renderJob();
    } catch (err) {
      replace(problem, h('div', { class: 'notice error' }, `Could not ${action} the job: ${err.message}`));
    }
  }

  function onEvent(ev) {
    const d = ev.data;
    if (ev.type === 'progress') stepsPerEpoch = d.steps;
    // a checkpoint's step counts from the start of training; mid-epoch ones come from pausing
    if (ev.type === 'checkpoint') lastCheckpoint = stepsPerEpoch && typeof d.step === 'number' ? d.step / stepsPerEpoch : d.epoch;
    if (ev.type === 'status' && d.status === 'running' && d.attempt && d.attempt !== attempt) {
      // a new attempt continues from the last checkpoint: what the old one drew after it is redone, not kept
      if (attempt) charts.truncateAfter(lastCheckpoint);
      attempt = d.attempt;
    }
    charts.add(ev);
    logBody.append(
      h(
        'tr',
        { class: `ev-${ev.type}`, 'data-seq': ev.seq },
        h('td', {}, ev.seq),
        h('td', {}, fmtTime(ev.createdAt)),
        h('td', {}, h('span', { class: `tag t-${ev.type}` }, ev.type)),
        h('td', {}, summary(ev)),
      ),
    );
    while (logBody.childElementCount > MAX_LOG_ROWS) logBody.firstElementChild.remove();
    if (!job) return;
    if (ev.type === 'progress') {
      job.progress = { epoch: d.epoch, epochs: d.epochs, step: d.step, steps: d.steps };
      renderProgress();
    } else if (ev.type === 'metrics' && !job.result) {
      replace(latest, metricCards(d, ['epoch']));
    } else if (ev.type === 'checkpoint') {
      refreshCheckpoints().catch(() => undefined);
    } else if (ev.type === 'status' || ev.type === 'log') {
      refreshJob().catch(() => undefined);
      if (ev.type === 'status' && TERMINAL.has(d.status)) refreshCheckpoints().catch(() => undefined);
    }
  }

  (async () => {
    try {
      await refreshJob();
      await refreshCheckpoints();
      await followEvents(id, onEvent, controller.signal);
    } catch (err) {
      if (controller.signal.aborted) return;
      replace(problem, h('div', { class: 'notice error' }, err.status === 404 ? `No job has the id ${id}.` : `Could not load the job: ${err.message}`));
    }
  })();

  return () => {
    controller.abort();
    charts.destroy();
  };
}
