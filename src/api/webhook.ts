/**
 * The admission webhook's own HTTPS server: the apiserver only calls webhooks over TLS,
 * and serving it here needs no proxy in front. Certificate and key are files (a mounted
 * Secret, e.g. from cert-manager) and are re-read when they change, so a rotated
 * certificate is picked up without a restart.
 *
 * Anyone who can reach the port can post a review, so the webhook treats every review as a
 * hint (admission.ts). Where the apiserver can be configured to present a client
 * certificate to webhooks (`--admission-control-config-file`, docs/kubernetes.md), the
 * server also requires one, signed by the configured CA and, if names are given, issued
 * to one of them: nothing else gets past the TLS handshake, a flood of forged reviews
 * cannot crowd out the apiserver's, and the user a review names is the apiserver's word.
 */
import { readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import Koa from 'koa';
import type Router from '@koa/router';
import type { Logger } from '../logger';
import type { Metrics } from './metrics';

/** Who may call the webhook: the apiserver, by its client certificate. */
export interface WebhookClientAuthentication {
  /** CA bundle file that signed the apiserver's webhook client certificate (re-read when it changes). */
  caFile: string;
  /** Common names or DNS names the certificate must carry one of; empty: any certificate the CA signed. */
  names: string[];
}

/** Set on `ctx.state` for a request whose caller presented an accepted client certificate. */
export const VERIFIED_CALLER = 'verifiedCaller';

export interface WebhookServerOptions {
  certFile: string;
  keyFile: string;
  port: number;
  host?: string;
  router: Router;
  logger: Logger;
  /** Refused callers are counted here, by reason. */
  metrics?: Metrics;
  /** Unset: any caller is served (every review is still only a hint). */
  clientAuthentication?: WebhookClientAuthentication;
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
  const { certFile, keyFile, logger, clientAuthentication } = options;
  const files = [certFile, keyFile, ...(clientAuthentication ? [clientAuthentication.caFile] : [])];
  const read = () => ({
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    ...(clientAuthentication ? { ca: readFileSync(clientAuthentication.caFile) } : {}),
  });
  const modified = () => files.map((file) => statSync(file).mtimeMs).join(':');
  const refuse = refusalReporter(logger, options.metrics);

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
  if (clientAuthentication) {
    const accepted = new Set(clientAuthentication.names);
    app.use(async (ctx, next) => {
      const names = certificateNames((ctx.req.socket as TLSSocket).getPeerCertificate());
      if (accepted.size > 0 && !names.some((name) => accepted.has(name))) {
        refuse('name', `a client certificate issued to ${names.join(', ') || 'no name'}, not one of WEBHOOK_CLIENT_NAMES`);
        ctx.status = 403;
        ctx.body = { error: 'this client certificate may not call the webhook' };
        return;
      }
      ctx.state[VERIFIED_CALLER] = true;
      await next();
    });
  }
  app.use(options.router.routes()).use(options.router.allowedMethods());

  const handle = app.callback();
  // Koa answers its own errors (ctx.onerror); nothing is left for the server to catch.
  const server = https.createServer(
    { ...read(), minVersion: 'TLSv1.2', requestCert: Boolean(clientAuthentication), rejectUnauthorized: Boolean(clientAuthentication) },
    (req, res) => void handle(req, res),
  );
  // Without a certificate the CA signed, a caller gets no further than the handshake.
  if (clientAuthentication)
    server.on('tlsClientError', (err: NodeJS.ErrnoException) =>
      refuse('handshake', `a TLS handshake without an accepted client certificate (${err.code ?? err.message})`),
    );
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
      logger.info({ files }, 'webhook certificates reloaded');
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

/** The subject common name and DNS names of a peer certificate. */
function certificateNames(certificate: ReturnType<TLSSocket['getPeerCertificate']>): string[] {
  const dnsNames = (certificate.subjectaltname ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice('DNS:'.length));
  const commonName = certificate.subject?.CN;
  return [...(typeof commonName === 'string' ? [commonName] : []), ...dnsNames];
}

/** How often a stream of refused callers is logged: one line per interval, each refusal counted. */
const REFUSAL_REPORT_INTERVAL_MS = 10_000;

function refusalReporter(logger: Logger, metrics: Metrics | undefined): (reason: 'handshake' | 'name', what: string) => void {
  let lastReport = 0;
  let unreported = 0;
  return (reason, what) => {
    metrics?.webhookRefused.inc({ reason });
    unreported++;
    const now = Date.now();
    if (now - lastReport < REFUSAL_REPORT_INTERVAL_MS) return;
    logger.warn({ reason, refused: unreported }, `webhook: refused ${what}; only the apiserver may call it`);
    lastReport = now;
    unreported = 0;
  };
}
