/** Shared pieces of the benchmarks: the service's settings, a logger that costs what the real one does, polling. */
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config';
import type { Logger } from '../../src/logger';

/**
 * The service's default settings, as a deployment without overrides has them. Two may be
 * set to compare: SHUTDOWN_DISPATCH_AHEAD_SECONDS (0: stops dispatched at their instant)
 * and WORKER_MAX_CONCURRENT_ACTIVITIES.
 */
export function serviceConfig(): Config {
  const { SHUTDOWN_DISPATCH_AHEAD_SECONDS, WORKER_MAX_CONCURRENT_ACTIVITIES } = process.env;
  return loadConfig({ SHUTDOWN_DISPATCH_AHEAD_SECONDS, WORKER_MAX_CONCURRENT_ACTIVITIES });
}

/**
 * The service logs at info in production (one line per Slack command, admission and
 * Kubernetes write): the same logger settings as src/logger.ts, serialising every line,
 * but into /dev/null so the benchmark output stays readable.
 */
export function discardingLogger(): Logger {
  return pino(
    {
      level: 'info',
      base: { service: 'devenv-scheduler' },
      redact: {
        paths: ['*.token', '*.botToken', '*.signingSecret', '*.password', '*.secretAccessKey', '*.authorization', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: '/dev/null', sync: true }),
  );
}

/** The first whole minute at least `leadMs` from now. */
export function wholeMinuteAfter(leadMs: number): Date {
  return new Date(Math.ceil((Date.now() + leadMs) / 60_000) * 60_000);
}

/** Polls until `check` returns a value, or throws naming what it waited for. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
