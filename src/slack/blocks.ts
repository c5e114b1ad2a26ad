/**
 * Slack message building shared by the HTTP side (replies to `/devenv` and button clicks)
 * and the notifier activity (warnings and announcements). The button action ids live here
 * so the buttons a warning carries are exactly the ones `/slack/interactions` handles.
 *
 * Escaping has one seam: every text a message shows, the fallback `text` as much as the
 * blocks, is a `Mrkdwn`, and the only ways to make one are here. `md` escapes whatever it
 * interpolates unless that is a `Mrkdwn` already; `mention` and `channelLink` check that
 * they are given an id before they make markup of it. `message`, `section` and `context`
 * take nothing else, so a raw string that reached Slack would not type-check. What a user
 * types, an annotation, an AWS tag or an error message can never become `<!channel>`, a
 * link or a mention: a word that looks like a user id stays a word. Only an id from a field
 * that is one (the requester's `user_id`, a recorded `by`) is shown as a mention.
 */
import { dns1123LabelError } from '../domain/names';
import { isSlackChannelId, isSlackGroupId, isSlackUserId } from './ids';

export const PROLONGATE_ACTION_ID = 'devenv_prolongate';
export const STOP_ACTION_ID = 'devenv_stop';
/** Only the App Home carries it: a warning is about an environment that is up. */
export const START_ACTION_ID = 'devenv_start';
/** What "Prolongate 1h" adds. */
export const BUTTON_PROLONGATION_MINUTES = 60;

declare const BUILT: unique symbol;
/** Made by the builders of this module only. */
type Built = { readonly [BUILT]: true };

/** A Block Kit block; Slack validates the shape, we only build a handful of kinds, all here. */
export type Block = { readonly type: string; readonly [field: string]: unknown } & Built;

export interface SlackMessage {
  /** Plain-text fallback for notifications and clients without Block Kit; Slack reads it as mrkdwn too, so it is escaped like the blocks. */
  readonly text: string & Built;
  readonly blocks: Block[];
}

/** Text that is safe to give Slack as mrkdwn. */
export class Mrkdwn {
  readonly #source: string;
  private constructor(source: string) {
    this.#source = source;
  }
  /** Markup written by this module. */
  static trusted(source: string): Mrkdwn {
    return new Mrkdwn(source);
  }
  get source(): string {
    return this.#source;
  }
}

/** Slack's mrkdwn treats only these three as control characters. */
export function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export type MrkdwnPart = Mrkdwn | string | number;

const piece = (part: MrkdwnPart): string => (part instanceof Mrkdwn ? part.source : escape(String(part)));

/** A template of this code's own markup; every interpolated string or number is escaped, a `Mrkdwn` is kept as it is. */
export function md(strings: TemplateStringsArray, ...parts: MrkdwnPart[]): Mrkdwn {
  let out = strings[0] ?? '';
  parts.forEach((part, i) => (out += piece(part) + (strings[i + 1] ?? '')));
  return Mrkdwn.trusted(out);
}

/** Any text, escaped. */
export const escaped = (text: string): Mrkdwn => Mrkdwn.trusted(escape(text));

/** Several parts, escaped where they are not `Mrkdwn`, joined by `separator` (escaped too). */
export function joinMd(parts: readonly MrkdwnPart[], separator: string): Mrkdwn {
  return Mrkdwn.trusted(parts.map(piece).join(escape(separator)));
}

/** `<@U…>` for a user id; anything else (`scheduler`, `api:ci`, `cli:alice`) is shown as the escaped word it is. */
export function mention(user: string): Mrkdwn {
  return isSlackUserId(user) ? Mrkdwn.trusted(`<@${user}>`) : escaped(user);
}

/**
 * An owner as Slack mentions them: `<@U…>` for a user id, `<!subteam^S…>` for a user-group
 * id; anything else (never in a validated owners list) is shown as the escaped word it is.
 */
export function ownerMention(owner: string): Mrkdwn {
  if (isSlackGroupId(owner)) return Mrkdwn.trusted(`<!subteam^${owner}>`);
  return mention(owner);
}

/** Owners, mentioned, comma-separated. */
export const ownerMentions = (owners: readonly string[]): Mrkdwn => joinMd(owners.map(ownerMention), ', ');

/** `<#C…>` for a channel id; anything else is shown escaped. */
export function channelLink(channel: string): Mrkdwn {
  return isSlackChannelId(channel) ? Mrkdwn.trusted(`<#${channel}>`) : escaped(channel);
}

/**
 * Escaped text in which the given user ids, and only those, read as mentions. For sentences
 * a workflow wrote about a `by` that is known here (the requester's own `user_id`, a recorded
 * `by`): "dev1 stopped by U024BE7LH" names who acted. Any other word that looks like an id,
 * whether typed by a user or taken from a tag, stays a word.
 */
export function withMentions(text: string, users: readonly (string | null | undefined)[]): Mrkdwn {
  const ids = [...new Set(users.filter((user): user is string => typeof user === 'string' && isSlackUserId(user)))];
  if (ids.length === 0) return escaped(text);
  // Ids are upper-case letters and digits only: nothing to escape in the pattern.
  const pattern = new RegExp(`(?<![A-Za-z0-9])(${ids.join('|')})(?![A-Za-z0-9])`, 'g');
  return Mrkdwn.trusted(escape(text).replace(pattern, (id) => `<@${id}>`));
}

/** Text inside a code span or block: a backtick of its own would end the span and let the rest be read as markup, links included. */
const inCode = (text: string): string => escape(text.replace(/`/g, 'ˋ'));

/** Inline code, on one line. */
export const code = (text: string): Mrkdwn => Mrkdwn.trusted(`\`${inCode(text.replace(/[\r\n]+/g, ' '))}\``);
/** A code block: the most compact thing Slack renders as a table. */
export const codeBlock = (text: string): Mrkdwn => Mrkdwn.trusted(`\`\`\`${inCode(text)}\`\`\``);

/** Shown in each reader's own time zone by Slack ("Today at 7:00 PM"); the fallback is UTC. */
export function slackDate(iso: string): Mrkdwn {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return escaped(iso);
  const fallback = `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return Mrkdwn.trusted(`<!date^${Math.floor(at.getTime() / 1000)}^{date_short_pretty} at {time}|${fallback}>`);
}

const built = <T>(value: T): T & Built => value as T & Built;

export const section = (text: Mrkdwn): Block => built({ type: 'section', text: { type: 'mrkdwn', text: text.source } });
export const context = (...texts: Mrkdwn[]): Block =>
  built({ type: 'context', elements: texts.map((text) => ({ type: 'mrkdwn', text: text.source })) });

export const divider = (): Block => built({ type: 'divider' });

/** The one way to make a message: its fallback text is escaped like its blocks. */
export function message(text: Mrkdwn, blocks: Block[]): SlackMessage {
  return { text: built(text.source), blocks };
}

/** Slack refuses section text over 3000 characters: long lists are split over several sections. */
export function sections(lines: readonly Mrkdwn[], limit = 2900): Block[] {
  const blocks: Block[] = [];
  let chunk = '';
  for (const { source: line } of lines) {
    if (chunk && chunk.length + line.length + 1 > limit) {
      blocks.push(section(Mrkdwn.trusted(chunk)));
      chunk = '';
    }
    chunk = chunk ? `${chunk}\n${line}` : line;
  }
  if (chunk) blocks.push(section(Mrkdwn.trusted(chunk)));
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

/** Slack does not parse plain text for mentions or links; the only variable in these is the namespace, a DNS-1123 label. */
function plainText(text: string): { type: 'plain_text'; text: string } {
  return { type: 'plain_text', text };
}

const prolongateButton = (namespace: string) => ({
  type: 'button',
  action_id: PROLONGATE_ACTION_ID,
  text: plainText('Prolongate 1h'),
  style: 'primary',
  value: encodeButtonValue({ namespace, minutes: BUTTON_PROLONGATION_MINUTES }),
});

const stopButton = (namespace: string) => ({
  type: 'button',
  action_id: STOP_ACTION_ID,
  text: plainText('Stop now'),
  style: 'danger',
  value: encodeButtonValue({ namespace }),
  confirm: {
    title: plainText(`Stop ${namespace}?`),
    text: { type: 'mrkdwn', text: md`Every workload of *${namespace}* is scaled to 0 now.`.source },
    confirm: plainText('Stop now'),
    deny: plainText('Keep it running'),
  },
});

const startButton = (namespace: string) => ({
  type: 'button',
  action_id: START_ACTION_ID,
  text: plainText('Start'),
  value: encodeButtonValue({ namespace }),
});

export function warningButtons(namespace: string): Block {
  return built({
    type: 'actions',
    block_id: `devenv_warning_${namespace}`,
    elements: [prolongateButton(namespace), stopButton(namespace)],
  });
}

/** The App Home's buttons for one environment; block ids are unique within a view, as Slack requires. */
export function environmentButtons(namespace: string, buttons: readonly ('start' | 'stop' | 'prolongate')[]): Block {
  const make = { start: startButton, stop: stopButton, prolongate: prolongateButton };
  return built({
    type: 'actions',
    block_id: `devenv_home_${namespace}`,
    elements: buttons.map((button) => make[button](namespace)),
  });
}

/** A Home tab view (views.publish): the same blocks as a message, no fallback text. */
export interface HomeView {
  readonly type: 'home';
  readonly blocks: Block[];
}

export const homeView = (blocks: Block[]): HomeView => ({ type: 'home', blocks });
