/** Problem details as the API sends them (application/problem+json). */
export interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: Array<{ pointer: string; in?: string; detail: string }>;
}

/** The API answered with an error; the message names the request, the status and each offending field. */
export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly problem: ProblemBody | null,
    text: string,
  ) {
    const head = `${method} ${path} answered ${status}${problem?.title ? ` ${problem.title}` : ''}`;
    const fields = (problem?.errors ?? []).map((e) => `\n  ${e.in && e.in !== 'body' ? `${e.in} ` : ''}${e.pointer}: ${e.detail}`).join('');
    const detail = problem?.detail && !fields ? `: ${problem.detail}` : '';
    const hint = status === 401 ? ' (set --token or TFJS_ADAPT_TOKEN to an API key)' : '';
    super(problem ? `${head}${detail}${fields}${hint}` : `${head}: ${text.slice(0, 500) || '(empty body)'}${hint}`);
  }
}

/** The service could not be reached at all. */
export class ConnectionError extends Error {}

export interface ClientOptions {
  url: string;
  token?: string;
}

/** A thin fetch wrapper: base URL, bearer token, JSON in and out, problem+json turned into ApiError. */
export class ApiClient {
  readonly base: string;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.url.replace(/\/+$/, '');
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}), ...extra };
  }

  /** fetch against the service; network failures become a ConnectionError that says where it tried. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(this.base + path, { ...init, headers: this.headers((init.headers ?? {}) as Record<string, string>) });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ConnectionError(
        `cannot reach the service at ${this.base} (${cause?.code ?? cause?.message ?? (err as Error).message}); set --url or TFJS_ADAPT_URL`,
      );
    }
  }

  async json<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.fetch(path, {
      method,
      headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return this.parse<T>(method, path, res);
  }

  async parse<T>(method: string, path: string, res: Response): Promise<T> {
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: an error below quotes the text
    }
    if (!res.ok) throw new ApiError(method, path, res.status, parsed && typeof parsed === 'object' ? parsed : null, text);
    if (parsed === null && text) throw new ApiError(method, path, res.status, null, `expected JSON, got: ${text}`);
    return parsed as T;
  }
}
