/**
 * The values of an environment's policy as text, the way SHUTDOWN_TIME, TIME_ZONE and
 * WORKING_DAYS and the namespace's policy annotations spell them, with the words that say
 * what is wrong. Validation only: the rules that use the policy are in shutdown-policy.ts.
 */
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { WEEKDAYS, type Weekday } from './shutdown-policy';

const CLOCK_TIME = /^([01]\d|2[0-3]):[0-5]\d$/;

export const clockTime = z.string().regex(CLOCK_TIME, 'must be a 24-hour time such as 19:00');

/** A wake-up time, or `off` (null): no wake-up, e.g. for one namespace when WAKE_TIME is set. */
export const wakeTimeValue = z
  .string()
  .refine((text) => text.trim().toLowerCase() === 'off' || CLOCK_TIME.test(text), {
    message: 'must be a 24-hour time such as 08:00, or off',
  })
  .transform((text) => (text.trim().toLowerCase() === 'off' ? null : text));

/**
 * Why a wake time cannot go with a shutdown time, or undefined when it can. One at or after
 * the shutdown would start the environment after hours every working day, to be stopped
 * again by the after-hours window: refused rather than given that meaning.
 */
export function wakeTimeProblem(wakeTime: string, shutdownTime: string): string | undefined {
  return wakeTime < shutdownTime ? undefined : `must be before the shutdown time (${shutdownTime})`;
}

/** An opt-in: `true` or `false`, any case. */
export const switchValue = z
  .string()
  .refine((text) => ['true', 'false'].includes(text.trim().toLowerCase()), { message: 'must be true or false' })
  .transform((text) => text.trim().toLowerCase() === 'true');

export const timeZone = z.string().refine((zone) => IANAZone.isValidZone(zone), {
  message: 'must be an IANA time zone such as Europe/Berlin or America/New_York',
});

export const weekdayList = z.string().transform((text, ctx) => {
  const days = new Set<Weekday>();
  for (const part of splitList(text)) {
    const range = part.split('-').map((day) => toWeekday(day));
    if (range.some((day) => day === undefined) || range.length > 2) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not a day; use Mon..Sun or a range like Mon-Fri` });
      return z.NEVER;
    }
    const [first, last = first] = range as Weekday[];
    for (let i = WEEKDAYS.indexOf(first!); ; i = (i + 1) % 7) {
      days.add(WEEKDAYS[i]!);
      if (WEEKDAYS[i] === last) break;
    }
  }
  if (days.size === 0) {
    ctx.addIssue({ code: 'custom', message: 'must name at least one working day' });
    return z.NEVER;
  }
  return WEEKDAYS.filter((day) => days.has(day));
});

const DAY_NAMES: Record<string, Weekday> = Object.fromEntries(
  WEEKDAYS.flatMap((day, i) => {
    const full = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'][i]!;
    return [
      [day.toLowerCase(), day],
      [full, day],
    ];
  }),
);

/** "Mon" or "Monday", any case; "Frii" is not a day. */
function toWeekday(text: string): Weekday | undefined {
  return DAY_NAMES[text.trim().toLowerCase()];
}

/** A comma-separated list's entries, trimmed, empty ones dropped. */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** SAVINGS_SUMMARY: the weekday and time, in the service's time zone, of the weekly savings summary. */
export interface SavingsSummarySetting {
  day: Weekday;
  time: string;
}

/** `Mon 09:00` (a weekday and a 24-hour time), or `off` (null). */
export const savingsSummary = z.string().transform((text, ctx): SavingsSummarySetting | null => {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'off') return null;
  const [day, time, ...rest] = trimmed.split(/\s+/);
  const weekday = WEEKDAYS.find((d) => d.toLowerCase() === day?.toLowerCase());
  if (!weekday || !time || !CLOCK_TIME.test(time) || rest.length > 0) {
    ctx.addIssue({ code: 'custom', message: 'must be a weekday and a 24-hour time such as Mon 09:00, or off' });
    return z.NEVER;
  }
  return { day: weekday, time };
});
