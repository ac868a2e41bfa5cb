/**
 * HTTP by hand, for tests of what the service does with a body that stalls, trickles or is cut
 * short: fetch cannot send part of a body and then stop, nor close a connection at a chosen point.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Api } from './api.js';

export interface RawRequest {
  socket: Socket;
  /** what the server sent so far */
  sent(): string;
  /** everything the server sent, once the connection closed */
  closed: Promise<string>;
}

/**
 * A POST on a connection of its own: its headers and `start`, then nothing until the test writes
 * more to `socket` or destroys it.
 */
export function openRequest(url: string, request: { path: string; headers: Record<string, string>; start: string }): RawRequest {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const head = Object.entries(request.headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.write(`POST ${request.path} HTTP/1.1\r\nhost: ${hostname}\r\n${head}\r\n${request.start}`);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (text += d));
  // a reset after the answer is a closed connection too; what arrived is what counts
  socket.on('error', () => undefined);
  return { socket, sent: () => text, closed: new Promise((resolve) => socket.once('close', () => resolve(text))) };
}

/** The server's response to the request whose x-test header is `marker`, seen through the HTTP server's 'request' event. */
export function responseTo(api: Api, marker: string): Promise<ServerResponse> {
  return new Promise((resolve) => {
    const server = api.app.server;
    server.on('request', function seen(req: IncomingMessage, res: ServerResponse) {
      if (req.headers['x-test'] !== marker) return;
      server.off('request', seen);
      resolve(res);
    });
  });
}

/** `p`, or a failure naming `what` after `ms`. */
export async function within<T>(what: string, p: Promise<T>, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The status, headers (names lower-cased) and body (parsed when JSON) of an HTTP/1.1 answer read off a socket. */
export function parseAnswer(text: string): { status: number; headers: Record<string, string>; body: any; text: string } {
  const [head = '', body = ''] = text.split('\r\n\r\n', 2);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  let parsed: unknown = body;
  try {
    parsed = JSON.parse(body);
  } catch {
    // not JSON: the assertions show the text
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: parsed, text };
}

/**
 * `text` parsed, and asserted to be what the service answers a body it gives up on
 * (src/routes/body-watch.ts): a 408 problem `slug` that closes the connection.
 */
export function refusedBody(text: string, slug: 'upload_stalled' | 'upload_too_slow'): ReturnType<typeof parseAnswer> {
  const res = parseAnswer(text);
  assert.equal(res.status, 408, res.text);
  assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
  assert.equal(res.headers.connection, 'close');
  assert.equal(res.body.type, `urn:tfjs-adapt:problem:${slug}`);
  return res;
}
