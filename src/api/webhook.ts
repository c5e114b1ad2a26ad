/**
 * The admission webhook's own HTTPS server: the apiserver only calls webhooks over TLS,
 * and serving it here needs no proxy in front. Certificate and key are files (a mounted
 * Secret, e.g. from cert-manager) and are re-read when they change, so a rotated
 * certificate is picked up without a restart.
 */
import { readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type Router from '@koa/router';
import type { Logger } from '../logger';

export interface WebhookServerOptions {
  certFile: string;
  keyFile: string;
  port: number;
  host?: string;
  router: Router;
  logger: Logger;
  /** How often the certificate files are checked for a change. */
  reloadIntervalMs?: number;
  /** How long `close` lets requests in flight finish before it cuts their connections (default 5 s). */
  closeTimeoutMs?: number;
}

/** How long the webhook's close lets requests in flight finish, unless told otherwise. */
export const WEBHOOK_CLOSE_TIMEOUT_MS = 5_000;

export interface WebhookServer {
  url: string;
  close(): Promise<void>;
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { certFile, keyFile, logger } = options;
  const read = () => ({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
  const modified = () => `${statSync(certFile).mtimeMs}:${statSync(keyFile).mtimeMs}`;

  let closing = false;
  const app = new Koa();
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      // Only a bug gets here; with failurePolicy Ignore the apiserver admits the namespace anyway.
      logger.error({ err, path: ctx.path }, 'webhook request failed');
      ctx.status = 500;
      ctx.body = { error: 'internal error' };
    }
    // The apiserver keeps its connections alive: once closing, each answer ends its connection.
    if (closing) ctx.set('Connection', 'close');
  });
  app.use(options.router.routes()).use(options.router.allowedMethods());

  const server = https.createServer({ ...read(), minVersion: 'TLSv1.2' }, app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });

  let seen = modified();
  const reload = setInterval(() => {
    try {
      const now = modified();
      if (now === seen) return;
      server.setSecureContext(read());
      seen = now;
      logger.info({ certFile }, 'webhook certificate reloaded');
    } catch (err) {
      logger.error({ err: String(err), certFile }, 'webhook certificate could not be reloaded; serving the previous one');
    }
  }, options.reloadIntervalMs ?? 60_000);
  reload.unref();

  const { port } = server.address() as AddressInfo;
  return {
    url: `https://${options.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        clearInterval(reload);
        const cut = setTimeout(() => server.closeAllConnections(), options.closeTimeoutMs ?? WEBHOOK_CLOSE_TIMEOUT_MS);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
