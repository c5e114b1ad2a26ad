/**
 * The one way the service builds a Slack Web API client: no retries of its own (Temporal's
 * retry policy or the caller decides), a rate-limited call refused at once rather than held,
 * a bounded wait per request, and the client's own logging kept to errors.
 */
import { webApi } from '@slack/bolt';

export function slackWebClient(token: string, { slackApiUrl, timeoutMs }: { slackApiUrl?: string; timeoutMs: number }): webApi.WebClient {
  return new webApi.WebClient(token, {
    slackApiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: timeoutMs,
    logLevel: webApi.LogLevel.ERROR,
  });
}
