import { EventSourceParserStream } from 'eventsource-parser/stream';
import { ApiError, type ApiClient } from './api-client.js';

export interface StreamEvent {
  seq: number;
  type: 'status' | 'progress' | 'metrics' | 'checkpoint' | 'log';
  createdAt: string;
  data: Record<string, any>;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
export const isTerminal = (ev: StreamEvent) => ev.type === 'status' && TERMINAL.has(ev.data.status);

/**
 * Yields a job's events from its SSE stream, each once and in order, until the terminal status
 * event. A dropped connection is resumed with Last-Event-ID, so a restart of the API (or a
 * proxy that cuts long requests) costs a reconnect, never an event.
 */
export async function* jobEvents(client: ApiClient, jobId: string, opts: { retries?: number; retryDelayMs?: number } = {}): AsyncGenerator<StreamEvent> {
  const path = `/v1/jobs/${encodeURIComponent(jobId)}/events`;
  let last = 0;
  let failures = 0;
  for (;;) {
    try {
      const res = await client.fetch(path, { headers: { accept: 'text/event-stream', ...(last > 0 ? { 'last-event-id': String(last) } : {}) } });
      if (!res.ok) await client.parse('GET', path, res);
      if (res.body === null) throw new Error(`the event stream of job ${jobId} answered without a body`);
      const messages = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
      for await (const message of messages) {
        if (!message.data) continue;
        const ev = JSON.parse(message.data) as StreamEvent;
        if (ev.seq <= last) continue;
        last = ev.seq;
        failures = 0;
        yield ev;
        if (isTerminal(ev)) return;
      }
      // the server ends the stream only after the terminal event; anything else is a cut connection
      if (++failures > (opts.retries ?? 10)) throw new Error(`the event stream of job ${jobId} kept ending before the job did (last event ${last})`);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (++failures > (opts.retries ?? 10)) throw err;
    }
    await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 1000));
  }
}
