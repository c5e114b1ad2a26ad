/**
 * How an instant reads to a person: in Slack, the Temporal UI, the CLI and the API. Pure
 * and deterministic (luxon only), so workflows format their replies with it too.
 */
import { DateTime } from 'luxon';

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
  const dayDiff = Math.round(
    (Date.UTC(when.year, when.month - 1, when.day) - Date.UTC(today.year, today.month - 1, today.day)) / 86_400_000,
  );
  const day = dayDiff === 0 ? 'today' : dayDiff === 1 ? 'tomorrow' : when.toFormat('ccc d LLL');
  return `${day} ${twoDigits(when.hour)}:${twoDigits(when.minute)} ${zoneAbbreviation(when)}`;
}

const twoDigits = (n: number): string => String(n).padStart(2, '0');

/** "08:00 CET": the wall-clock time alone, as a scheduled wake-up is announced. */
export function describeClockTime(instant: Date, timeZone: string): string {
  const when = DateTime.fromJSDate(instant, { zone: timeZone });
  return `${twoDigits(when.hour)}:${twoDigits(when.minute)} ${zoneAbbreviation(when)}`;
}

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
