/**
 * Slack message building shared by the HTTP side (replies to `/devenv` and button clicks)
 * and the notifier activity (warnings and announcements). The button action ids live here
 * so the buttons a warning carries are exactly the ones `/slack/interactions` handles.
 */
import { dns1123LabelError } from '../commands';

export const PROLONGATE_ACTION_ID = 'devenv_prolongate';
export const STOP_ACTION_ID = 'devenv_stop';
/** What "Prolongate 1h" adds. */
export const BUTTON_PROLONGATION_MINUTES = 60;

/** A Block Kit block; Slack validates the shape, we only build a handful of kinds. */
export type Block = { type: string; [field: string]: unknown };

export interface SlackMessage {
  /** Plain-text fallback for notifications and clients without Block Kit. */
  text: string;
  blocks: Block[];
}

/** Slack's mrkdwn treats only these three as control characters. */
export function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Workflows record who acted as a Slack user id (`U024BE7LH`); in a message that should
 * read as a mention. Namespaces are lowercase (DNS-1123), so they never look like one.
 */
export function mentionUsers(escapedText: string): string {
  return escapedText.replace(/\b[UW][A-Z0-9]{8,}\b/g, (id) => `<@${id}>`);
}

/** Escaped, with user ids as mentions: any text from a workflow or a user goes through here. */
export const mrkdwn = (text: string): string => mentionUsers(escape(text));

/** Shown in each reader's own time zone by Slack ("Today at 7:00 PM"); the fallback is UTC. */
export function slackDate(iso: string): string {
  const at = new Date(iso);
  const fallback = `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `<!date^${Math.floor(at.getTime() / 1000)}^{date_short_pretty} at {time}|${fallback}>`;
}

export const section = (text: string): Block => ({ type: 'section', text: { type: 'mrkdwn', text } });
export const context = (...texts: string[]): Block => ({ type: 'context', elements: texts.map((text) => ({ type: 'mrkdwn', text })) });

/** Slack refuses section text over 3000 characters: long lists are split over several sections. */
export function sections(lines: string[], limit = 2900): Block[] {
  const blocks: Block[] = [];
  let chunk = '';
  for (const line of lines) {
    if (chunk && chunk.length + line.length + 1 > limit) {
      blocks.push(section(chunk));
      chunk = '';
    }
    chunk = chunk ? `${chunk}\n${line}` : line;
  }
  if (chunk) blocks.push(section(chunk));
  return blocks;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export const workloadCount = (n: number): string => `${n} workload${n === 1 ? '' : 's'}`;

/** The value a button carries; parsed back strictly because any signed client can send one. */
export interface ButtonValue {
  namespace: string;
  minutes?: number;
}

export function encodeButtonValue(value: ButtonValue): string {
  return JSON.stringify(value);
}

export function decodeButtonValue(raw: unknown): ButtonValue | undefined {
  if (typeof raw !== 'string') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { namespace, minutes } = value as Record<string, unknown>;
  if (typeof namespace !== 'string' || dns1123LabelError(namespace)) return undefined;
  if (minutes !== undefined && (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes <= 0)) return undefined;
  return minutes === undefined ? { namespace } : { namespace, minutes };
}

export function warningButtons(namespace: string): Block {
  return {
    type: 'actions',
    block_id: `devenv_warning_${namespace}`,
    elements: [
      {
        type: 'button',
        action_id: PROLONGATE_ACTION_ID,
        text: { type: 'plain_text', text: 'Prolongate 1h' },
        style: 'primary',
        value: encodeButtonValue({ namespace, minutes: BUTTON_PROLONGATION_MINUTES }),
      },
      {
        type: 'button',
        action_id: STOP_ACTION_ID,
        text: { type: 'plain_text', text: 'Stop now' },
        style: 'danger',
        value: encodeButtonValue({ namespace }),
        confirm: {
          title: { type: 'plain_text', text: `Stop ${namespace}?` },
          text: { type: 'mrkdwn', text: `Every workload of *${namespace}* is scaled to 0 now.` },
          confirm: { type: 'plain_text', text: 'Stop now' },
          deny: { type: 'plain_text', text: 'Keep it running' },
        },
      },
    ],
  };
}
