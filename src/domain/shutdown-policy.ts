/**
 * When does an environment shut down? Pure functions of (instant, policy), so the
 * workflow stays deterministic and the rules are tested on their own, DST edges included.
 * All instants are UTC `Date`s; local days and wall-clock times are in the policy's zone.
 */
import { DateTime } from 'luxon';

export const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface EnvironmentPolicy {
  /** Wall-clock time, HH:mm, in `timeZone`. */
  shutdownTime: string;
  /** IANA zone, e.g. Europe/Berlin. */
  timeZone: string;
  workingDays: Weekday[];
  /** Local dates (YYYY-MM-DD) treated like weekends. */
  holidays: string[];
  /** Minutes before shutdown at which users are warned, largest first. */
  warningOffsetsMinutes: number[];
  /** Upper bound on how far today's shutdown may be pushed past its default. */
  maxProlongationMinutes: number;
  /** How long an environment started after hours (or on a day off) stays up. */
  afterHoursWindowMinutes: number;
  /**
   * Wall-clock time, HH:mm, in `timeZone`, before `shutdownTime`: a stopped environment is
   * started then on working days. Absent (not undefined: policies are compared key by key)
   * when there is no wake-up.
   */
  wakeTime?: string;
  /**
   * Slack user and user-group ids (the namespace's `devenv-scheduler/owners`, domain/owners.ts):
   * mentioned in warnings, and with SLACK_OWNERS_ONLY=control the only ones besides the admins
   * who may stop or prolongate. Absent, like `wakeTime`, when there are none.
   */
  owners?: string[];
  /**
   * The namespace's owners annotation is there but invalid: no owners are known, and with
   * SLACK_OWNERS_ONLY=control only admins may stop or prolongate until it is fixed, rather
   * than anyone. Absent otherwise.
   */
  ownersInvalid?: true;
  /**
   * The namespace's `devenv-scheduler/wait-for-databases: "true"`: a start starts the tagged
   * AWS databases first and wakes the workloads once they are `available`. Absent when off.
   */
  waitForDatabases?: true;
}

export interface ShutdownPlan {
  shutdownAt: Date;
  /** True when the start fell outside working hours and the after-hours window applies. */
  afterHours: boolean;
}

export interface PlannedWarning {
  offsetMinutes: number;
  at: Date;
}

function local(instant: Date, policy: EnvironmentPolicy): DateTime {
  return DateTime.fromJSDate(instant, { zone: policy.timeZone });
}

/** The local date (YYYY-MM-DD) of `instant` in `timeZone`. */
export function localDate(instant: Date, timeZone: string): string {
  return DateTime.fromJSDate(instant, { zone: timeZone }).toISODate() ?? '';
}

export function isWorkingDay(instant: Date, policy: EnvironmentPolicy): boolean {
  const day = local(instant, policy);
  const weekday = WEEKDAYS[day.weekday - 1];
  return weekday !== undefined && policy.workingDays.includes(weekday) && !policy.holidays.includes(day.toISODate() ?? '');
}

/**
 * The default shutdown instant on the local day containing `instant`, or null on a day off.
 * A shutdown time that falls into a DST gap moves forward by the gap, as clocks do; one in
 * the repeated fall-back hour is its first (earlier) occurrence. Built from the start of the
 * local day so the answer never depends on the time of day of `instant`.
 */
export function defaultShutdownOn(instant: Date, policy: EnvironmentPolicy): Date | null {
  return isWorkingDay(instant, policy) ? atClockTime(instant, policy.shutdownTime, policy) : null;
}

/** `clock` (HH:mm) on the local day containing `instant`, DST gaps and repeats as defaultShutdownOn says. */
function atClockTime(instant: Date, clock: string, policy: EnvironmentPolicy): Date {
  const [hour, minute] = clock.split(':').map(Number);
  return local(instant, policy).startOf('day').set({ hour, minute }).toJSDate();
}

/** The first instant of the local day containing `instant`. */
export function startOfLocalDay(instant: Date, policy: EnvironmentPolicy): Date {
  return local(instant, policy).startOf('day').toJSDate();
}

/** The first instant of the local day after the one containing `instant`. */
export function startOfNextLocalDay(instant: Date, policy: EnvironmentPolicy): Date {
  return local(instant, policy).startOf('day').plus({ days: 1 }).toJSDate();
}

/**
 * The first wake-up strictly after `after`: the wake time on a working day, never on a
 * day off or a holiday; null without a wake time. Strictly after, so a stop at or after
 * a wake-up (a manual stop at 10:00) waits for the next working day's.
 */
export function nextWakeUp(after: Date, policy: EnvironmentPolicy): Date | null {
  const { wakeTime } = policy;
  if (wakeTime === undefined) return null;
  // Every week has a working day and each holiday takes one away: the answer is within this many days.
  const days = 7 * (policy.holidays.length + 2);
  const first = local(after, policy).startOf('day');
  for (let i = 0; i < days; i++) {
    // Noon of each day: a day's start is not always 00:00 (a DST change at midnight), its noon always is that day.
    const day = first.plus({ days: i }).set({ hour: 12 }).toJSDate();
    if (!isWorkingDay(day, policy)) continue;
    const at = atClockTime(day, wakeTime, policy);
    if (at.getTime() > after.getTime()) return at;
  }
  return null;
}

/**
 * When an environment (re)started at `now` shuts down: today's default if that is still
 * ahead on a working day; otherwise after the after-hours window, so it never runs overnight.
 */
export function shutdownAfterStart(now: Date, policy: EnvironmentPolicy): ShutdownPlan {
  const today = defaultShutdownOn(now, policy);
  if (today && today.getTime() > now.getTime()) return { shutdownAt: today, afterHours: false };
  return { shutdownAt: new Date(now.getTime() + policy.afterHoursWindowMinutes * 60_000), afterHours: true };
}

/** The warnings for a shutdown, in the order they fire. */
export function plannedWarnings(shutdownAt: Date, policy: EnvironmentPolicy): PlannedWarning[] {
  return [...policy.warningOffsetsMinutes]
    .sort((a, b) => b - a)
    .map((offsetMinutes) => ({ offsetMinutes, at: new Date(shutdownAt.getTime() - offsetMinutes * 60_000) }));
}

/**
 * Whether two policies plan the same shutdowns: the same fields with the same values, lists
 * in the same order, whatever order the fields were written in. No Node builtin, so
 * workflow code calls it too.
 */
export function samePolicy(a: EnvironmentPolicy, b: EnvironmentPolicy): boolean {
  return sameValue(a, b);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  return (
    aKeys.length === bKeys.length &&
    aKeys.every(
      (key) =>
        Object.prototype.hasOwnProperty.call(b, key) && sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
    )
  );
}
