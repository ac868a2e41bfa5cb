/**
 * watchBody on a plain HTTP server whose handler decides when the request is read, as the upload
 * routes' disk writes do when they are slower than the bytes arrive: the time the server holds a
 * request paused is not the client's, neither as silence nor against its rate. The routes' own
 * bounds (stall, trickle, close) are tested through the service: uploads-bounds.test.ts,
 * models-predict.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { after, test } from 'node:test';
import { watchBody } from '../../../src/routes/body-watch.js';
import { within } from '../../helpers/raw-http.js';

const PAUSE_MS = 3000;
let server: Server | undefined;
after(() => server?.close());

test('a request the server holds paused for longer than the idle timeout and the grace period is neither stalled nor too slow', async () => {
  const bounds = { uploadIdleTimeoutSeconds: 1, uploadMinBytesPerSecond: 1000, uploadRateGraceSeconds: 1 };
  const chunk = 'x'.repeat(500);
  let resumeAfterPause: (() => void) | undefined;
  let settle: (outcome: string) => void = () => undefined;
  const outcome = new Promise<string>((resolve) => (settle = resolve));
  const listening = createServer((req, res) => {
    const watch = watchBody(req, bounds);
    watch.signal.addEventListener('abort', () => settle((watch.signal.reason as { slug: string }).slug));
    req.once('data', () => {
      req.pause();
      resumeAfterPause = () => req.resume();
    });
    req.on('data', () => undefined);
    req.on('end', () => {
      watch.stop();
      res.end();
      settle('read to its end');
    });
  });
  server = listening;
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  const { port } = listening.address() as { port: number };
  const client = connect(port, '127.0.0.1').on('error', () => undefined);
  client.write(`POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${3 * chunk.length}\r\n\r\n${chunk}`);
  try {
    // 500 bytes, then the server holds the request for 3 s while the client's next 500 wait in
    // the socket: 1000 bytes in 3 s of wall time, 333 bytes/s, were it counted against the client
    await new Promise((r) => setTimeout(r, PAUSE_MS));
    client.write(chunk);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(resumeAfterPause, 'the server received the first bytes and paused');
    resumeAfterPause();
    client.write(chunk);
    assert.equal(await within('the request to be read or refused', outcome), 'read to its end');
  } finally {
    client.destroy();
  }
});
