// The dashboard's only way to the service: the public HTTP API, with the token the user
// typed (if any) as a bearer token.
import { h } from './dom.js';

const TOKEN_KEY = 'tfjs-adapt-token';

export const getToken = () => localStorage.getItem(TOKEN_KEY) || '';
export const setToken = (t) => (t ? localStorage.setItem(TOKEN_KEY, t) : localStorage.removeItem(TOKEN_KEY));

export function authHeaders(extra = {}) {
  const t = getToken();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

/** An error answer; `problem` is the problem+json body when there is one. */
export class ApiError extends Error {
  constructor(method, path, status, problem, text) {
    super(problem?.detail || problem?.title || `${method} ${path} answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`);
    this.status = status;
    this.problem = problem;
  }
}

const parseJson = (text) => {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
};

/** The ApiError of an error answer: its problem+json body when it has one; 401 says where the token goes. */
function errorOf(method, path, status, text) {
  const parsed = parseJson(text);
  const problem = parsed && typeof parsed === 'object' ? parsed : null;
  if (status === 401) {
    return new ApiError(
      method,
      path,
      401,
      { ...problem, detail: `${problem?.detail ?? 'authentication required'}: type an API key into the token field at the top right` },
      text,
    );
  }
  return new ApiError(method, path, status, problem, text);
}

/** The answer of a request with the token, or an ApiError for no answer or an error status. */
async function send(method, path, init = {}) {
  let res;
  try {
    res = await fetch(path, { ...init, method, headers: authHeaders(init.headers) });
  } catch (err) {
    throw new ApiError(method, path, 0, null, `the service did not answer (${err.message})`);
  }
  if (res.ok) return res;
  throw errorOf(method, path, res.status, await res.text());
}

export async function api(method, path, body) {
  const res = await send(method, path, {
    headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return parseJson(await res.text());
}

/** A multipart request (uploads, images to predict); the browser sets the form's boundary. */
export async function apiForm(method, path, form) {
  const res = await send(method, path, { headers: { accept: 'application/json' }, body: form });
  return parseJson(await res.text());
}

/**
 * A request whose body reports its progress: `onProgress(sent, total)` as the body goes out.
 * XMLHttpRequest, because fetch cannot tell how much of a request body has been sent.
 */
export function apiUpload(method, path, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    for (const [k, v] of Object.entries(authHeaders({ accept: 'application/json' }))) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300 ? resolve(parseJson(xhr.responseText)) : reject(errorOf(method, path, xhr.status, xhr.responseText));
    xhr.onerror = () => reject(new ApiError(method, path, 0, null, 'the service did not answer (the connection failed)'));
    xhr.send(body);
  });
}

/**
 * Saves a file of the API as `filename`. A plain link cannot send the bearer token, so this
 * fetches the file with it and hands it to the browser as a blob.
 */
export async function download(path, filename) {
  const res = await send('GET', path);
  const url = URL.createObjectURL(await res.blob());
  h('a', { href: url, download: filename }).click();
  // the browser reads the blob after click() returns; revoking at once could cut the download
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
