/** A minimal SSE reader over fetch: collects `{id, event, data}` until the server ends the stream or `stopAfter` says so. */
export interface SseMessage {
  id: number;
  event: string;
  data: any;
}

export async function readSse(
  url: string,
  opts: { lastEventId?: number; stopAfter?: (m: SseMessage, all: SseMessage[]) => boolean; timeoutMs?: number } = {},
): Promise<{ messages: SseMessage[]; ended: boolean }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 120_000);
  const messages: SseMessage[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  // the timer is cleared however the request ends, a refused connection included: left
  // running, it would keep the test process alive for the whole timeout
  try {
    const res = await fetch(url, {
      headers: { accept: 'text/event-stream', ...(opts.lastEventId !== undefined ? { 'last-event-id': String(opts.lastEventId) } : {}) },
      signal: ac.signal,
    });
    if (res.status !== 200) throw new Error(`SSE request answered ${res.status}: ${await res.text()}`);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let sep: number;
      while ((sep = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const i = line.indexOf(':');
          if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1).trimStart();
        }
        if (fields.data === undefined) continue;
        const m = { id: Number(fields.id), event: fields.event ?? 'message', data: JSON.parse(fields.data) };
        messages.push(m);
        if (opts.stopAfter?.(m, messages)) {
          ac.abort();
          return { messages, ended: false };
        }
      }
    }
    return { messages, ended: true };
  } catch (err) {
    if ((err as Error).name === 'AbortError' && opts.stopAfter) return { messages, ended: false };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
