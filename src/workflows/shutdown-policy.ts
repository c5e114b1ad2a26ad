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
  if (!isWorkingDay(instant, policy)) return null;
  const [hour, minute] = policy.shutdownTime.split(':').map(Number);
  return local(instant, policy).startOf('day').set({ hour, minute }).toJSDate();
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
 * "2026-11-23 19:00 Europe/Berlin": for the Temporal UI's current details, which show the
 * text as it was written, so nothing relative ("today", "in 2h") that goes stale. Also cheap:
 * no zone abbreviation, whose Intl formatters cost more than the rest of a workflow task.
 */
export function describeInstantFixed(instant: Date, timeZone: string): string {
  return `${DateTime.fromJSDate(instant, { zone: timeZone }).toFormat('yyyy-MM-dd HH:mm')} ${timeZone}`;
}

/** "today 19:00 CET", "tomorrow 09:30 EST", "Sat 21 Nov 21:00 UTC": what a user reads in Slack. */
export function describeInstant(instant: Date, now: Date, timeZone: string): string {
  const when = DateTime.fromJSDate(instant, { zone: timeZone });
  const today = DateTime.fromJSDate(now, { zone: timeZone });
  // Calendar days between the two local dates, from the dates alone: luxon's startOf and
  // diff, which each work out the zone's offset again, were a tenth of a status reply's CPU.
  const dayDiff = Math.round((Date.UTC(when.year, when.month - 1, when.day) - Date.UTC(today.year, today.month - 1, today.day)) / 86_400_000);
  const day = dayDiff === 0 ? 'today' : dayDiff === 1 ? 'tomorrow' : when.toFormat('ccc d LLL');
  return `${day} ${twoDigits(when.hour)}:${twoDigits(when.minute)} ${zoneAbbreviation(when)}`;
}

const twoDigits = (n: number): string => String(n).padStart(2, '0');

/**
 * "CET", "EST", "IST", "NZDT" where some English locale has a name for the zone, else the
 * offset ("GMT+9"). No single locale names them all: en-US says GMT+1 for Berlin.
 */
const ABBREVIATION_LOCALES = ['en-US', 'en-GB', 'en-IN', 'en-AU'];
/** By zone and UTC offset, which decide the name: formatting it four times took most of a status reply's CPU. */
const abbreviations = new Map<string, string>();
function zoneAbbreviation(when: DateTime): string {
  const key = `${when.zoneName ?? ''} ${when.offset}`;
  let name = abbreviations.get(key);
  if (name === undefined) {
    const names = ABBREVIATION_LOCALES.map((locale) => when.setLocale(locale).toFormat('ZZZZ'));
    name = names.find((n) => !/^(GMT|UTC)[+-]/.test(n)) ?? names[0]!;
    abbreviations.set(key, name);
  }
  return name;
}

/** "2h 10m", "45m", "0m". */
export function describeRemaining(from: Date, to: Date): string {
  const minutes = Math.max(0, Math.round((to.getTime() - from.getTime()) / 60_000));
  const hours = Math.floor(minutes / 60);
  return hours > 0 ? `${hours}h ${minutes % 60}m` : `${minutes}m`;
}

/** "today 19:00 CET, in 2h 10m": how a shutdown reads to a person at `now`. */
export function describeShutdown(shutdownAt: Date, now: Date, timeZone: string): string {
  return `${describeInstant(shutdownAt, now, timeZone)}, in ${describeRemaining(now, shutdownAt)}`;
}
