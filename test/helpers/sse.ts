import { EventSourceParserStream } from 'eventsource-parser/stream';

/** An SSE reader over fetch (framing by eventsource-parser): collects `{id, event, data}` until the server ends the stream or `stopAfter` says so. */
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
  // the timer is cleared however the request ends, a refused connection included: left
  // running, it would keep the test process alive for the whole timeout
  try {
    const res = await fetch(url, {
      headers: { accept: 'text/event-stream', ...(opts.lastEventId !== undefined ? { 'last-event-id': String(opts.lastEventId) } : {}) },
      signal: ac.signal,
    });
    if (res.status !== 200) throw new Error(`SSE request answered ${res.status}: ${await res.text()}`);
    if (res.body === null) throw new Error(`SSE request to ${url} answered without a body`);
    for await (const event of res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream())) {
      if (!event.data) continue;
      const m = { id: Number(event.id), event: event.event ?? 'message', data: JSON.parse(event.data) };
      messages.push(m);
      if (opts.stopAfter?.(m, messages)) {
        ac.abort();
        return { messages, ended: false };
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
