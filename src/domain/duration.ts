/**
 * Durations as people type them in Slack: `1h`, `90m`, `2h30m`, `1h 15m`.
 * Whole minutes only; the scheduler has no use for seconds.
 */
export type ParsedDuration = { ok: true; minutes: number } | { ok: false; error: string };

const DURATION = /^(?:(\d+)\s*h(?:ours?|rs?)?)?\s*(?:(\d+)\s*m(?:in(?:utes?|s)?)?)?$/i;

export function parseDuration(text: string): ParsedDuration {
  const trimmed = text.trim();
  if (trimmed.startsWith('-')) return { ok: false, error: `"${trimmed}" is negative; give a positive duration such as 1h, 90m or 2h30m` };
  const match = DURATION.exec(trimmed);
  if (trimmed === '' || !match || (match[1] === undefined && match[2] === undefined)) {
    return { ok: false, error: `"${trimmed}" is not a duration; use forms such as 1h, 90m or 2h30m` };
  }
  const minutes = Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0);
  if (minutes === 0) return { ok: false, error: 'the duration must be longer than 0 minutes' };
  return { ok: true, minutes };
}

export function formatMinutes(minutes: number): string {
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (hours === 0) return `${rest}m`;
  return rest === 0 ? `${hours}h` : `${hours}h${rest}m`;
}
