// The dashboard shell: a hash router over small views. Each view renders into the main
// element and returns a cleanup function that stops its timers and streams.
import { getToken, setToken } from './api.js';
import { h, replace } from './dom.js';
import { datasetView } from './views/dataset.js';
import { datasetsView } from './views/datasets.js';
import { jobView } from './views/job.js';
import { jobsView } from './views/jobs.js';
import { modelView } from './views/model.js';
import { newJobView } from './views/new-job.js';
import { sweepView } from './views/sweep.js';
import { sweepsView } from './views/sweeps.js';
import { uploadView } from './views/upload.js';

const ROUTES = [
  [/^#\/jobs\/([A-Za-z0-9_-]+)$/, jobView, 'jobs'],
  [/^#\/jobs$/, jobsView, 'jobs'],
  [/^#\/sweeps\/([A-Za-z0-9_-]+)$/, sweepView, 'sweeps'],
  [/^#\/sweeps$/, sweepsView, 'sweeps'],
  [/^#\/datasets\/([A-Za-z0-9_-]+)$/, datasetView, 'datasets'],
  [/^#\/datasets$/, datasetsView, 'datasets'],
  [/^#\/models\/([A-Za-z0-9_-]+)$/, modelView, 'jobs'],
  [/^#\/upload$/, uploadView, 'upload'],
  [/^#\/new$/, newJobView, 'new'],
];

const main = document.getElementById('view');
let cleanup = null;

function route() {
  if (cleanup) cleanup();
  cleanup = null;
  const hash = location.hash || '#/jobs';
  const match = ROUTES.map(([re, view, nav]) => [re.exec(hash), view, nav]).find(([m]) => m);
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === match?.[2]);
  if (!match) {
    replace(main, h('h1', {}, 'Not found'), h('p', {}, `No page ${hash}. `, h('a', { href: '#/jobs' }, 'Back to the jobs')));
    return;
  }
  const [m, view] = match;
  replace(main);
  cleanup = view(main, ...m.slice(1).map(decodeURIComponent)) || null;
}

const tokenInput = document.getElementById('token');
tokenInput.value = getToken();
tokenInput.addEventListener('change', () => {
  setToken(tokenInput.value.trim());
  route();
});

window.addEventListener('hashchange', route);
route();
