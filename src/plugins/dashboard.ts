import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
// loaded with require (why: eslint.config.js)
import fastifyStatic = require('@fastify/static');
import type { FastifyInstance } from 'fastify';
import { PROJECT_ROOT } from '../paths.js';

/**
 * The files are plain browser JavaScript, served as they are from the source tree: no build
 * step, and the same path from src/ and dist/ because it is resolved from the project root.
 */
export const DASHBOARD_DIR = join(PROJECT_ROOT, 'src', 'dashboard');
const require = createRequire(import.meta.url);
/** Browser files as their packages ship them, wherever npm put the packages: the chart library, and the SSE parser (an ES module and the one it imports) */
const VENDOR = [
  { prefix: '/ui/vendor/', dir: dirname(require.resolve('uplot')), files: new Set(['/uPlot.iife.min.js', '/uPlot.min.css']) },
  { prefix: '/ui/vendor/eventsource-parser/', dir: dirname(require.resolve('eventsource-parser')), files: new Set(['/stream.js', '/index.js']) },
];

/** The dashboard: `/` is the page, `/ui/*` its scripts and styles. It only uses the public API. */
export async function dashboardPlugin(app: FastifyInstance) {
  await app.register(fastifyStatic, { root: DASHBOARD_DIR, prefix: '/ui/', index: false });
  for (const v of VENDOR) {
    await app.register(fastifyStatic, { root: v.dir, prefix: v.prefix, decorateReply: false, index: false, allowedPath: (path) => v.files.has(path) });
  }
  app.get('/', { schema: { hide: true } }, (_req, reply) => reply.header('cache-control', 'no-cache').sendFile('index.html', DASHBOARD_DIR));
}
