import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { PROJECT_ROOT } from '../paths.js';

/**
 * The files are plain browser JavaScript, served as they are from the source tree: no build
 * step, and the same path from src/ and dist/ because it is resolved from the project root.
 */
export const DASHBOARD_DIR = join(PROJECT_ROOT, 'src', 'dashboard');
/** uPlot as the package ships it, wherever npm put the package */
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'));
const UPLOT_FILES = new Set(['/uPlot.iife.min.js', '/uPlot.min.css']);

/** The dashboard: `/` is the page, `/ui/*` its scripts and styles. It only uses the public API. */
export async function dashboardPlugin(app: FastifyInstance) {
  await app.register(fastifyStatic, { root: DASHBOARD_DIR, prefix: '/ui/', index: false });
  await app.register(fastifyStatic, {
    root: UPLOT_DIR,
    prefix: '/ui/vendor/',
    decorateReply: false,
    index: false,
    allowedPath: (path) => UPLOT_FILES.has(path),
  });
  app.get('/', { schema: { hide: true } }, (_req, reply) => reply.header('cache-control', 'no-cache').sendFile('index.html', DASHBOARD_DIR));
}
