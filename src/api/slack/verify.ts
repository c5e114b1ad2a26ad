/**
 * Whether a request over HTTP was signed by Slack: the v0 signature of `v0:<timestamp>:<body>`
 * with the app's signing secret, checked by Bolt's own helper, within Slack's replay window.
 * Bolt has no koa receiver, so the router asks this before it reads anything of the body.
 */
import { verifySlackRequest } from '@slack/bolt';

/** Slack's replay window; Bolt's helper checks only the past side, so both sides are checked here. */
export const MAX_CLOCK_SKEW_SECONDS = 5 * 60;

export interface SignedRequest {
  /** The raw body, exactly as it arrived. */
  body: string;
  /** `x-slack-signature`, empty when absent. */
  signature: string;
  /** `x-slack-request-timestamp`, empty when absent. */
  timestamp: string;
}

/** Why the request is not Slack's (for the log, not for the caller), or undefined when it is. */
export function signatureProblem(signingSecret: string, request: SignedRequest, nowMs: number = Date.now()): string | undefined {
  const { body, signature, timestamp } = request;
  if (!signature || !timestamp) return 'missing signature headers';
  if (!/^\d{1,12}$/.test(timestamp)) return 'malformed timestamp';
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > MAX_CLOCK_SKEW_SECONDS) return 'timestamp outside the 5-minute window';
  try {
    verifySlackRequest({
      signingSecret,
      body,
      headers: { 'x-slack-signature': signature, 'x-slack-request-timestamp': Number(timestamp) },
      nowMilliseconds: nowMs,
    });
  } catch {
    return 'signature mismatch';
  }
  return undefined;
}
