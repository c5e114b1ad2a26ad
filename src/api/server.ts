/**
 * The HTTP face of the service (koa). Health, readiness and metrics live here; Slack,
 * the admission webhook and the REST API mount their routers on the same app.
 */
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
      await client.connection.withDeadline(Date.now() + READINESS_DEADLINE_MS, () =>
        client.connection.workflowService.getSystemInfo({}),
      );
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
