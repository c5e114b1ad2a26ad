/**
 * An environment's story: its bounded history, and the one sentence `why` answers (what
 * happens next, and why), as plain functions of (state, history, policy, now). No Temporal
 * here: the workflow appends, the client reads the memo, and test/story.test.ts checks the
 * sentences at fixed instants.
 */
import { DateTime } from 'luxon';
import { formatMinutes } from '../../domain/duration';
import type { EnvironmentPolicy } from '../../domain/shutdown-policy';
import { describeClockTime, describeInstant } from '../../domain/time-display';
import type { EnvironmentState, HistoryAction, HistoryEntry } from './definitions';
import { upcomingWakeUp } from './planning';

/** Entries an environment keeps: a few weeks of a typical one (docs/slack.md says what it costs). */
export const HISTORY_ENTRIES = 50;
/** The history's size as JSON in UTF-8, so the memo that carries it stays small whatever the details say. */
export const HISTORY_BYTES = 8 * 1024;
/** A detail longer than this (a long AWS error) is cut. */
export const DETAIL_CHARS = 300;

function utf8Length(text: string): number {
  let bytes = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/** The history with `entry` at its end, the oldest entries dropped past HISTORY_ENTRIES or HISTORY_BYTES. */
export function appended(history: readonly HistoryEntry[], entry: HistoryEntry): HistoryEntry[] {
  const bounded =
    entry.detail && entry.detail.length > DETAIL_CHARS ? { ...entry, detail: `${entry.detail.slice(0, DETAIL_CHARS - 1)}…` } : entry;
  const next = [...history, bounded].slice(-HISTORY_ENTRIES);
  while (next.length > 1 && utf8Length(JSON.stringify(next)) > HISTORY_BYTES) next.shift();
  return next;
}

/** One sentence, and the recorded `by` values it names (Slack shows those as mentions). */
export interface Why {
  sentence: string;
  mentions: string[];
}

const lastOf = (history: readonly HistoryEntry[], ...actions: HistoryAction[]): HistoryEntry | undefined =>
  [...history].reverse().find((e) => actions.includes(e.action));

/** "today 09:12", "yesterday", "Mon", "Mon 23 Nov": when something began, as a person says it. */
export function describeSince(instant: Date, now: Date, timeZone: string): string {
  const when = DateTime.fromJSDate(instant, { zone: timeZone });
  const today = DateTime.fromJSDate(now, { zone: timeZone });
  const days = Math.round((Date.UTC(when.year, when.month - 1, when.day) - Date.UTC(today.year, today.month - 1, today.day)) / 86_400_000);
  if (days === 0) return `today ${when.toFormat('HH:mm')}`;
  if (days === -1) return 'yesterday';
  if (days > -7 && days < 0) return when.toFormat('ccc');
  return when.toFormat('ccc d LLL');
}

/** "last night", "today at 19:00 CET", "on Mon": when a stop was, for a sentence about it. */
function describeStopTime(instant: Date, now: Date, timeZone: string): string {
  const when = DateTime.fromJSDate(instant, { zone: timeZone });
  const since = describeSince(instant, now, timeZone);
  if (since === 'yesterday' && when.hour >= 17) return 'last night';
  if (since.startsWith('today')) return `today at ${describeClockTime(instant, timeZone)}`;
  return since === 'yesterday' ? 'yesterday' : `on ${since}`;
}

const secondsClock = (instant: Date, timeZone: string) => DateTime.fromJSDate(instant, { zone: timeZone }).toFormat('HH:mm:ss');

/**
 * What happens next to the environment and why, in one sentence: "stops today 19:00 CET
 * (prolonged 1h by U0ANA at 17:40)", "not scheduled: label scheduler=disabled since Mon by
 * kubectl", "did not stop last night: AWS could not stop: …; Kubernetes stopped at 19:00:00",
 * "stopped; wakes tomorrow 08:00 CET".
 */
export function whyNext(state: EnvironmentState, history: readonly HistoryEntry[], policy: EnvironmentPolicy, now: Date): Why {
  const zone = policy.timeZone;
  const mentions = new Set<string>();
  const by = (entry: HistoryEntry): string => {
    mentions.add(entry.by);
    return entry.by;
  };
  const done = (sentence: string): Why => ({ sentence, mentions: [...mentions] });
  const clock = (iso: string) => DateTime.fromJSDate(new Date(iso), { zone }).toFormat('HH:mm');

  if (state.workloads === 'stopping') {
    const stop = lastOf(history, 'stop', 'scheduled-stop');
    return done(`stopping now${stop ? ` (${stop.action === 'scheduled-stop' ? 'scheduled' : `asked by ${by(stop)}`})` : ''}`);
  }
  if (state.workloads === 'starting') {
    const start = lastOf(history, 'start');
    return done(`starting now${start ? ` (asked by ${by(start)})` : ''}`);
  }

  const stopProblems = (state.problems ?? []).filter((p) => p.action === 'stop');
  if (state.workloads === 'stopped') {
    // The stop that stopped it: not one asked for that failed, nor a re-stop of what woke since.
    const stop = lastOf(
      history.filter((e) => !/^(failed|stopped again|put back to sleep)/.test(e.detail ?? '')),
      'stop',
      'scheduled-stop',
    );
    const aws = stopProblems.filter((p) => p.half === 'aws');
    if (aws.length && stop) {
      return done(
        `did not stop ${describeStopTime(new Date(stop.at), now, zone)}: ${aws.map((p) => p.detail).join('; ')}; Kubernetes stopped at ${secondsClock(new Date(stop.at), zone)}`,
      );
    }
    const stoppedBy = stop
      ? ` by ${stop.action === 'scheduled-stop' ? 'the schedule' : by(stop)} ${describeInstant(new Date(stop.at), now, zone)}`
      : '';
    if (!state.enabled) {
      const disabled = lastOf(history, 'disable');
      return done(
        `stopped${stoppedBy}; not scheduled: label scheduler=disabled${disabled ? ` since ${describeSince(new Date(disabled.at), now, zone)} by ${by(disabled)}` : ''}, so it stays stopped until started`,
      );
    }
    const wakeAt = upcomingWakeUp(state, policy);
    return done(
      wakeAt
        ? `stopped${stoppedBy}; wakes ${describeInstant(wakeAt, now, zone)}`
        : `stopped${stoppedBy}; stays stopped until someone starts it (no wake time)`,
    );
  }

  // Running.
  if (!state.enabled) {
    const disabled = lastOf(history, 'disable');
    return done(
      `not scheduled: label scheduler=disabled${disabled ? ` since ${describeSince(new Date(disabled.at), now, zone)} by ${by(disabled)}` : ''}; it stays up until someone stops it`,
    );
  }
  const kubernetes = stopProblems.find((p) => p.half === 'kubernetes');
  if (kubernetes) {
    const failed = lastOf(history, 'stop', 'scheduled-stop');
    const when = failed ? ` ${describeStopTime(new Date(failed.at), now, zone)}` : '';
    const next = state.shutdownAt
      ? `; stops ${describeInstant(new Date(state.shutdownAt), now, zone)}`
      : '; no stop is planned until it is started or reset';
    return done(`did not stop${when}: ${kubernetes.detail}${next}`);
  }
  if (!state.shutdownAt) {
    const failed = lastOf(history, 'scheduled-stop');
    if (failed?.detail?.startsWith('failed'))
      return done(`not scheduled: the scheduled stop ${describeInstant(new Date(failed.at), now, zone)} ${failed.detail}`);
    return done('running; no stop is planned');
  }
  const stops = `stops ${describeInstant(new Date(state.shutdownAt), now, zone)}`;
  if (state.prolongedMinutes > 0) {
    // Those since the last start or the morning reset that dropped the earlier ones (one that kept them says so in its detail).
    const since = history.map((e) => e.action === 'start' || (e.action === 'reset' && !e.detail)).lastIndexOf(true);
    const prolongations = history.slice(since + 1).filter((e) => e.action === 'prolongate');
    const last = prolongations.at(-1);
    const who = last
      ? prolongations.length === 1
        ? ` by ${by(last)} at ${clock(last.at)}`
        : `, last by ${by(last)} at ${clock(last.at)}`
      : '';
    return done(`${stops} (prolonged ${formatMinutes(state.prolongedMinutes)}${who})`);
  }
  return done(`${stops} (shutdown time ${policy.shutdownTime} ${zone})`);
}
