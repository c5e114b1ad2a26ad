/**
 * Slack's `response_url`: where late answers go (a result that took longer than Slack's
 * 3 seconds, a button's outcome). The one place that decides whether a URL may be posted to,
 * and the one place that posts, with the `fetch` it is given.
 */
import type { Logger } from '../../logger';
import type { Reply } from '../../slack/replies';

export const DEFAULT_RESPONSE_URL_ORIGINS: readonly string[] = ['https://hooks.slack.com'];

declare const CHECKED: unique symbol;
/** A response_url that `checkResponseUrl` has let through: the only kind anything is posted to. */
export type ResponseUrl = string & { readonly [CHECKED]: true };

/**
 * Whether a response_url may be posted to: a URL whose origin (scheme, host and port) is one
 * of `origins`, with no user or password in it. Slack's are
 * `https://hooks.slack.com/commands/...` and `https://hooks.slack.com/actions/...`.
 */
export function checkResponseUrl(raw: string, origins: readonly string[]): { ok: true; url: ResponseUrl } | { ok: false; problem: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, problem: 'response_url is not a URL' };
  }
  if (!origins.includes(url.origin) || url.username || url.password) {
    return { ok: false, problem: `response_url is not on ${origins.join(' or ')}: only Slack's own response URLs are answered` };
  }
  return { ok: true, url: url.href as ResponseUrl };
}

export interface ResponderOptions {
  logger: Logger;
  /**
   * The only origins a `response_url` may have (SLACK_RESPONSE_URL_ORIGINS): a request with
   * any other is refused before anything is done, and nothing is ever posted elsewhere.
   * Default: Slack's own, `https://hooks.slack.com`.
   */
  origins?: readonly string[];
  /** How replies are posted; default the global fetch. */
  fetch?: typeof fetch;
  /** The wait before the first retry, doubled for each further one. */
  retryDelayMs?: number;
}

export interface Responder {
  /** The checked URL, or why it is refused (logged with its origin only: the URL is a credential). */
  check(raw: string, who: { user: string; channel: string | undefined }): { ok: true; url: ResponseUrl } | { ok: false; problem: string };
  /** Posts a reply; retried briefly, because the user has no other way to learn the result. Never throws: a reply that cannot be posted is logged. */
  post(url: ResponseUrl, reply: Reply): Promise<void>;
  /** Posts `work`'s reply once it is there, in the background. */
  later(url: ResponseUrl, work: Promise<Reply>): void;
}

const ATTEMPTS = 3;
const DEFAULT_RETRY_DELAY_MS = 1000;
const POST_TIMEOUT_MS = 5000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export function createResponder(options: ResponderOptions): Responder {
  const { logger } = options;
  const origins = options.origins ?? DEFAULT_RESPONSE_URL_ORIGINS;
  const post = options.fetch ?? fetch;
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;

  async function postReply(url: ResponseUrl, reply: Reply): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let problem: string;
      try {
        const response = await post(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          // Late answers are new messages: a warning and its buttons stay where they are.
          body: JSON.stringify({ ...reply, replace_original: false }),
          signal: AbortSignal.timeout(POST_TIMEOUT_MS),
        });
        if (response.ok) return;
        problem = `HTTP ${response.status}`;
        // Slack answers 404 once a response_url has expired (30 minutes, 5 uses): retrying cannot help.
        if (response.status < 500 && response.status !== 429) attempt = ATTEMPTS;
      } catch (err) {
        problem = String(err);
      }
      if (attempt >= ATTEMPTS) {
        // The URL itself is a credential for the channel: log the text, not where it was going.
        logger.error({ problem, text: reply.text }, 'could not post a result to Slack');
        return;
      }
      await sleep(retryDelayMs * 2 ** (attempt - 1));
    }
  }

  return {
    check(raw, { user, channel }) {
      const checked = checkResponseUrl(raw, origins);
      if (checked.ok) return checked;
      let origin: string | undefined;
      try {
        origin = new URL(raw).origin;
      } catch {
        origin = undefined;
      }
      logger.warn({ user, channel, origin, allowed: origins }, 'Slack request refused: response_url not on an allowed origin');
      return checked;
    },
    post: postReply,
    later(url, work) {
      void work.then((reply) => postReply(url, reply));
    },
  };
}
