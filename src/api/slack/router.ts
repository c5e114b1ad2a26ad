/**
 * `/devenv` over HTTP: `/slack/commands`, `/slack/interactions` and `/slack/events` (the
 * Events API: `app_home_opened`), mounted on the koa app.
 * Each request's signature is checked (verify.ts) before anything of it is read; then it
 * goes to the same handlers as Socket Mode's (handlers.ts).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import type { Logger } from '../../logger';
import type { SlackHandlers } from './handlers';
import { signatureProblem } from './verify';

export interface SlackRouterOptions {
  handlers: SlackHandlers;
  signingSecret: string;
  logger: Logger;
}

/** `/slack/commands`, `/slack/interactions` and `/slack/events`: requests signed by Slack, handed to the same handlers as Socket Mode's. */
export function createSlackRouter({ handlers, signingSecret, logger }: SlackRouterOptions): Router {
  if (!signingSecret) throw new Error('createSlackRouter: the Slack signing secret is empty');
  const router = new Router();

  /** The raw body when the request is signed by Slack within the replay window; otherwise answers 401 and returns undefined. */
  async function verifiedBody(ctx: Context): Promise<string | undefined> {
    let body: string;
    try {
      body = await getRawBody(ctx.req, { length: ctx.get('content-length') || undefined, limit: '100kb', encoding: 'utf8' });
    } catch (err) {
      ctx.status = (err as { status?: number }).status ?? 400;
      ctx.body = { error: 'unreadable body' };
      return undefined;
    }
    const problem = signatureProblem(signingSecret, {
      body,
      signature: ctx.get('x-slack-signature'),
      timestamp: ctx.get('x-slack-request-timestamp'),
    });
    if (problem) {
      logger.warn({ path: ctx.path, ip: ctx.ip, reason: problem }, 'Slack request refused: not signed by Slack');
      ctx.status = 401;
      ctx.body = { error: 'invalid Slack request signature' };
      return undefined;
    }
    return body;
  }

  router.post('/slack/commands', async (ctx) => {
    const body = await verifiedBody(ctx);
    if (body === undefined) return;
    const { status, reply } = await handlers.command(Object.fromEntries(new URLSearchParams(body)));
    ctx.status = status;
    ctx.body = reply;
  });

  router.post('/slack/interactions', async (ctx) => {
    const body = await verifiedBody(ctx);
    if (body === undefined) return;
    let payload: unknown;
    try {
      payload = JSON.parse(new URLSearchParams(body).get('payload') ?? '');
    } catch {
      payload = undefined;
    }
    const taken = handlers.interaction(payload);
    // Slack wants an empty 200 at once; anything a user should see goes to response_url.
    ctx.status = taken.status;
    ctx.body = taken.status === 200 ? '' : { error: taken.error };
  });

  router.post('/slack/events', async (ctx) => {
    const body = await verifiedBody(ctx);
    if (body === undefined) return;
    let payload: { type?: unknown; challenge?: unknown; event?: unknown } | undefined;
    try {
      payload = JSON.parse(body) as typeof payload;
    } catch {
      payload = undefined;
    }
    // Asked once, when the Request URL is entered in the app's settings: signed like every other request.
    if (payload?.type === 'url_verification' && typeof payload.challenge === 'string') {
      ctx.body = { challenge: payload.challenge };
      return;
    }
    if (typeof payload?.type !== 'string') {
      ctx.status = 400;
      ctx.body = { error: 'malformed event payload' };
      return;
    }
    // Slack's notes about the app itself (`app_rate_limited`): nothing to do, and nothing to send again.
    if (payload.type !== 'event_callback') {
      logger.info({ type: payload.type }, 'Slack event ignored: not ours');
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    const taken = handlers.event(payload.event);
    // Slack sends an event again unless it has its 200 within 3 seconds: everything is done in the background.
    ctx.status = taken.status;
    ctx.body = taken.status === 200 ? '' : { error: taken.error };
  });

  return router;
}
