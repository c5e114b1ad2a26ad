/** Environment policies for tests: every day a working day, so no test depends on the weekday it runs on. */
import { DateTime } from 'luxon';
import type { EnvironmentPolicy } from '../../src/workflows/shutdown-policy';

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

/**
 * A policy that shuts down at `shutdown` (to the minute), in a fixed-offset zone where the
 * real now is mid-morning, so a wall-clock test never straddles a local midnight whatever
 * the time it runs.
 */
export function policyShuttingDownAt(shutdown: DateTime, overrides: Partial<EnvironmentPolicy> = {}): EnvironmentPolicy {
  const wanted = (9 - DateTime.utc().hour + 24) % 24; // hours to add to UTC for a local 09:xx
  const offset = wanted > 14 ? wanted - 24 : wanted; // Etc/GMT zones span UTC-12..UTC+14
  const timeZone = offset === 0 ? 'UTC' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`; // POSIX signs are inverted
  return everyDayPolicy({ shutdownTime: shutdown.setZone(timeZone).toFormat('HH:mm'), timeZone, ...overrides });
}

/** A policy whose shutdown is three hours from the real now (see policyShuttingDownAt). */
export function morningPolicy(): EnvironmentPolicy {
  return policyShuttingDownAt(DateTime.utc().plus({ hours: 3 }));
}
