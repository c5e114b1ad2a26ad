/**
 * The HTTP face of the service (koa). Health, readiness and metrics live here; Slack,
 * the admission webhook and the REST API mount their routers on the same app.
 */
import http, { type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import type { Client } from '@temporalio/client';
import Koa from 'koa';
import type { Logger } from '../logger';
import type { Metrics } from './metrics';

export interface ApiDependencies {
  client: Client;
  logger: Logger;
  metrics: Metrics;
  /** Feature routers (Slack, ...) mounted after the built-in routes. */
  routers?: Router[];
}

const READINESS_DEADLINE_MS = 2000;

export function createApi({ client, logger, metrics, routers = [] }: ApiDependencies): Koa {
  const app = new Koa();
  const router = new Router();

  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
      // Errors are JSON everywhere: a path or method no router answered too, not koa's text.
      if (ctx.body === undefined && (ctx.status === 404 || ctx.status === 405)) {
        const status = ctx.status;
        ctx.body = {
          error:
            status === 404
              ? `no route ${ctx.method} ${ctx.path}; the REST API is under /api/v1, described at /openapi.json`
              : `${ctx.path} does not answer ${ctx.method}; it answers ${ctx.response.get('Allow')}`,
        };
        ctx.status = status;
      }
    } catch (err) {
      logger.error({ err, path: ctx.path }, 'request failed');
      ctx.status = 500;
      ctx.body = { error: 'internal error' };
    } finally {
      const route = String(ctx._matchedRoute ?? 'unmatched');
      metrics.httpRequests.inc({ route, method: ctx.method, status: String(ctx.status) });
      metrics.httpDuration.observe({ route, method: ctx.method }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  });

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  // Ready only while Temporal answers: without it no command can do anything.
  router.get('/readyz', async (ctx) => {
    try {
      await client.connection.withDeadline(Date.now() + READINESS_DEADLINE_MS, () => client.connection.workflowService.getSystemInfo({}));
      ctx.body = { status: 'ready', temporal: 'reachable' };
    } catch (err) {
      logger.warn({ err: String(err) }, 'readiness check: Temporal unreachable');
      ctx.status = 503;
      ctx.body = { status: 'not ready', temporal: 'unreachable' };
    }
  });

  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  for (const mounted of [router, ...routers]) app.use(mounted.routes()).use(mounted.allowedMethods());
  return app;
}

export interface ListeningApi {
  server: Server;
  port: number;
  /**
   * Stops taking connections and resolves once every request in flight has been answered:
   * idle keep-alive connections are closed at once, and each answer given from now on ends
   * its connection (`Connection: close`). Requests still running after `closeTimeoutMs`
   * have their connections cut. Safe to call more than once.
   */
  close(): Promise<void>;
}

/** Serves `app` over HTTP on `port` (0: any free one) and keeps track of what is in flight, for `close`. */
export async function listenApi(
  app: Koa,
  { port, host, closeTimeoutMs }: { port: number; host?: string; closeTimeoutMs: number },
): Promise<ListeningApi> {
  const handle = app.callback();
  // Koa answers its own errors (ctx.onerror); nothing is left for the server to catch.
  const server = http.createServer((req, res) => void handle(req, res));
  let closing: Promise<void> | undefined;
  const inFlight = new Set<ServerResponse>();
  server.on('request', (_req, res: ServerResponse) => {
    if (closing) res.setHeader('Connection', 'close');
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
        const cut = setTimeout(() => server.closeAllConnections(), closeTimeoutMs);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      })),
  };
}
