// Builds elements from data without innerHTML, so names and messages from the API can never
// become markup.

/** h('a', { href, class: 'x', onclick }, 'text', child, [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtNum(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return v === undefined || v === null ? '–' : String(v);
  if (Number.isInteger(v)) return v.toLocaleString();
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}

export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

export function fmtDuration(fromIso, toIso) {
  if (!fromIso) return '–';
  const s = Math.max(0, ((toIso ? Date.parse(toIso) : Date.now()) - Date.parse(fromIso)) / 1000);
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export const statusBadge = (status) => h('span', { class: `badge s-${status}`, 'data-status': status }, status);

/** 0..1 bar with a caption, e.g. epoch 2/10 · step 30/94 */
export function progressBar(fraction, caption) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return h(
    'div',
    { class: 'progress', title: caption, role: 'progressbar', 'aria-valuenow': Math.round(pct), 'aria-valuemin': 0, 'aria-valuemax': 100 },
    h('div', { class: 'fill', style: { width: `${pct}%` } }),
    h('span', { class: 'caption' }, caption),
  );
}

/** How far a job is, 0..1, from its progress ({epoch, epochs, step, steps}). */
export function jobFraction(job) {
  if (job.status === 'succeeded') return 1;
  const p = job.progress;
  if (!p || !p.epochs) return 0;
  return (p.epoch - 1 + (p.steps ? p.step / p.steps : 0)) / p.epochs;
}

export function progressCaption(job) {
  const p = job.progress;
  if (!p) return job.status === 'succeeded' ? 'done' : '–';
  return `epoch ${p.epoch}/${p.epochs} · step ${p.step}/${p.steps}`;
}

/** A region that takes dropped files: `onDrop(dataTransfer)`; its children say what to drop and hold a file input for the keyboard. */
export function dropZone(attrs, onDrop, ...children) {
  const zone = h(
    'div',
    {
      ...attrs,
      class: 'drop-zone',
      ondragover: (e) => {
        e.preventDefault();
        zone.classList.add('over');
      },
      ondragleave: () => zone.classList.remove('over'),
      ondrop: (e) => {
        e.preventDefault();
        zone.classList.remove('over');
        onDrop(e.dataTransfer);
      },
    },
    ...children,
  );
  return zone;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let u = 0;
  for (; v >= 1024 && u < units.length - 1; u++) v /= 1024;
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** A form row: the label, the control (given its `id`), and a hint the control is described by. */
export function field(id, label, control, hint) {
  control.id = id;
  if (hint) control.setAttribute('aria-describedby', `${id}-hint`);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', { id: `${id}-hint`, class: 'hint' }, hint) : h('span'));
}
