// The dashboard's only way to the service: the public HTTP API, with the token the user
// typed (if any) as a bearer token.

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

export async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: authHeaders({ accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }),
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new ApiError(method, path, 0, null, `the service did not answer (${err.message})`);
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON; quoted in the error below
  }
  if (res.status === 401) {
    const problem = parsed && typeof parsed === 'object' ? parsed : null;
    throw new ApiError(method, path, 401, { ...problem, detail: `${problem?.detail ?? 'authentication required'}: type an API key into the token field at the top right` }, text);
  }
  if (!res.ok) throw new ApiError(method, path, res.status, parsed && typeof parsed === 'object' ? parsed : null, text);
  return parsed;
}
