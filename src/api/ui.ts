/**
 * `/ui`: a read-only page over the REST API (environments, 14-day timelines, weekly savings).
 *
 * The server only hands out files: the page, its script and style, and uPlot's own files from
 * node_modules. Every figure on the page is fetched by the script from the REST read routes, with
 * their authorisation (a read token, or none where UI_PUBLIC allows it), so the page can show
 * nothing the API would not. The page has no button that changes anything.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';

/**
 * Nothing from another origin, no inline script or style, no plugins, no framing, no forms
 * posted anywhere: what the page needs is its own files and fetches to the same API.
 */
export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE_DIR = path.join(__dirname, 'ui');
const UPLOT_DIR = path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');

interface Asset {
  file: string;
  type: string;
}

const ASSETS: Record<string, Asset> = {
  '/ui': { file: path.join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: path.join(PAGE_DIR, 'app.js'), type: 'application/javascript; charset=utf-8' },
  '/ui/ui.css': { file: path.join(PAGE_DIR, 'ui.css'), type: 'text/css; charset=utf-8' },
  '/ui/uPlot.iife.min.js': { file: path.join(UPLOT_DIR, 'uPlot.iife.min.js'), type: 'application/javascript; charset=utf-8' },
  '/ui/uPlot.min.css': { file: path.join(UPLOT_DIR, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

export function createUiRouter(): Router {
  const router = new Router();
  // Read once: a missing file fails the start-up, not the first visitor.
  const bodies = new Map(Object.entries(ASSETS).map(([route, asset]) => [route, readFileSync(asset.file)]));
  for (const [route, asset] of Object.entries(ASSETS)) {
    router.get(route, (ctx) => {
      ctx.set('Content-Security-Policy', UI_CONTENT_SECURITY_POLICY);
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.set('Referrer-Policy', 'no-referrer');
      // Small files that change with the service (uPlot with its version): never a stale page.
      ctx.set('Cache-Control', 'no-cache');
      ctx.type = asset.type;
      ctx.body = bodies.get(route);
    });
  }
  return router;
}
