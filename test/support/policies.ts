/** Environment policies for tests: every day a working day, so no test depends on the weekday it runs on. */
import { DateTime } from 'luxon';
import type { EnvironmentPolicy } from '../../src/domain/shutdown-policy';

export function everyDayPolicy(overrides: Partial<EnvironmentPolicy> = {}): EnvironmentPolicy {
  return {
    shutdownTime: '19:00',
    timeZone: 'UTC',
    workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'],
    holidays: [],
    warningOffsetsMinutes: [60, 30, 15],
    maxProlongationMinutes: 240,
    afterHoursWindowMinutes: 120,
    ...overrides,
  };
}

/** The service's defaults: Mon-Fri, 19:00 UTC. */
export const weekdayPolicy = (overrides: Partial<EnvironmentPolicy> = {}): EnvironmentPolicy =>
  everyDayPolicy({ workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], ...overrides });

/** A fixed-offset zone in which `instant` is around midday. */
function middayZone(instant: Date): string {
  const wanted = (12 - instant.getUTCHours() + 24) % 24; // hours to add to UTC for a local 12:xx
  const offset = wanted > 14 ? wanted - 24 : wanted; // Etc/GMT zones span UTC-12..UTC+14
  return offset === 0 ? 'UTC' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`; // POSIX signs are inverted
}

/**
 * A policy whose shutdown today is at `shutdownAt` (to the minute), in a fixed-offset zone
 * where `zoneOf` (default: the shutdown) is around midday, so a wall-clock test or
 * benchmark never straddles a local midnight whatever the time it runs.
 */
export function policyShuttingDownAt(
  shutdownAt: Date,
  overrides: Partial<EnvironmentPolicy> = {},
  zoneOf: Date = shutdownAt,
): EnvironmentPolicy {
  const timeZone = middayZone(zoneOf);
  return everyDayPolicy({ shutdownTime: DateTime.fromJSDate(shutdownAt, { zone: timeZone }).toFormat('HH:mm'), timeZone, ...overrides });
}

/** A policy whose shutdown is three hours from the real now, when it is mid-morning. */
export function morningPolicy(): EnvironmentPolicy {
  return policyShuttingDownAt(new Date(Date.now() + 3 * 3600_000));
}
