// A job's server-sent events over fetch rather than EventSource: fetch can send the bearer
// token, and resuming with Last-Event-ID is done here exactly as the API documents it.
import { EventSourceParserStream } from '/ui/vendor/eventsource-parser/stream.js';
import { authHeaders } from './api.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Calls onEvent for each event of the job, once and in order, until the terminal status event
 * or until `signal` aborts. A dropped connection is resumed after the last seen seq.
 */
export async function followEvents(jobId, onEvent, signal) {
  let last = 0;
  for (let failures = 0; !signal.aborted;) {
    try {
      const res = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
        headers: authHeaders({ accept: 'text/event-stream', ...(last ? { 'last-event-id': String(last) } : {}) }),
        signal,
      });
      if (!res.ok) throw new Error(`the event stream answered ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
      for (;;) {
        const { value: message, done } = await reader.read();
        if (done) break;
        if (!message.data) continue;
        const ev = JSON.parse(message.data);
        if (ev.seq <= last) continue;
        last = ev.seq;
        failures = 0;
        onEvent(ev);
        if (ev.type === 'status' && TERMINAL.has(ev.data.status)) return;
      }
      // the server ends a stream only after the terminal event: this one was cut
      failures++;
    } catch (err) {
      if (signal.aborted) return;
      if (++failures > 30) throw err;
    }
    await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** Math.min(failures, 4))));
  }
}
