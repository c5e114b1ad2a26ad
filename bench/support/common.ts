/** Shared pieces of the benchmarks: the service's settings, a logger that costs what the real one does, policies, polling. */
import { DateTime } from 'luxon';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config';
import type { Logger } from '../../src/logger';
import type { EnvironmentPolicy } from '../../src/workflows/shutdown-policy';

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

/** A fixed-offset zone in which `instant` is around midday, so "today" never straddles a local midnight. */
function middayZone(instant: Date): string {
  const wanted = (12 - instant.getUTCHours() + 24) % 24;
  const offset = wanted > 14 ? wanted - 24 : wanted;
  return offset === 0 ? 'UTC' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`; // POSIX signs are inverted
}

/**
 * A policy (every day a working day, default warnings) whose shutdown today is at
 * `shutdownAt`, which must be on a whole minute; `zoneOf` picks the zone (default: one
 * where `shutdownAt` is around midday).
 */
export function policyShuttingDownAt(shutdownAt: Date, zoneOf: Date = shutdownAt): EnvironmentPolicy {
  const timeZone = middayZone(zoneOf);
  return {
    shutdownTime: DateTime.fromJSDate(shutdownAt, { zone: timeZone }).toFormat('HH:mm'),
    timeZone,
    workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'],
    holidays: [],
    warningOffsetsMinutes: [60, 30, 15],
    maxProlongationMinutes: 240,
    afterHoursWindowMinutes: 120,
  };
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
