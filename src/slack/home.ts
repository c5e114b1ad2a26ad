/**
 * The app's Home tab, as one person sees it: every environment with its phase and next
 * shutdown, theirs first, each with the buttons its phase allows. Rendered from plain data
 * alone, like replies.ts; who sees it and when it is published is src/api/slack/home.ts.
 */
import type { EnvironmentSummary } from '../client/environments';
import type { Phase } from '../workflows/environment/definitions';
import {
  context,
  divider,
  environmentButtons,
  homeView,
  md,
  mention,
  ownerMentions,
  section,
  slackDate,
  code,
  type Block,
  type HomeView,
  type SlackMessage,
} from './blocks';
import { PHASE_ICON } from './replies';

/**
 * Slack refuses a view of more than 100 blocks; each environment takes two (its line and
 * its buttons), and the rest of the view a handful.
 */
export const HOME_MAX_ENVIRONMENTS = 40;
/** How many blocks of a result the Home shows above the list. */
const NOTICE_BLOCKS = 3;

export interface HomeInput {
  environments: readonly EnvironmentSummary[];
  /** The namespaces whose owners name the reader, or a group of theirs. */
  own: ReadonlySet<string>;
  /** The outcome of the reader's last click on this Home, and when it came. */
  notice?: { message: SlackMessage; at: Date };
  /** The READ allow-list keeps the reader out: by their id, or because the Home is in no channel. Nothing is listed. */
  refused?: { user: string; by: 'user' | 'channel' };
  /** Why the environments could not be listed; the list is then left out. */
  unavailable?: string;
}

/** Which buttons an environment in `phase` shows: what can be asked of it now. */
export function buttonsFor(phase: Phase): ('start' | 'stop' | 'prolongate')[] {
  switch (phase) {
    case 'running':
      return ['prolongate', 'stop'];
    case 'stopped':
      return ['start'];
    case 'disabled':
      return ['start', 'stop'];
    case 'starting':
    case 'stopping':
      return [];
  }
}

function environmentBlocks({ namespace, phase, nextShutdown, policy }: EnvironmentSummary, own: boolean): Block[] {
  // A Home is read long after it was published: the time is Slack's, in the reader's own zone, never "in 2h".
  const when = nextShutdown ? md`shuts down ${slackDate(nextShutdown)}` : md`no scheduled shutdown`;
  const owners = policy?.owners?.length ? md`\nOwners: ${ownerMentions(policy.owners)}` : md``;
  const line = section(md`${PHASE_ICON[phase] ?? ''} *${namespace}*${own ? ' (yours)' : ''} · ${phase} · ${when}${owners}`);
  const buttons = buttonsFor(phase);
  return buttons.length
    ? [line, environmentButtons(namespace, buttons)]
    : [line, context(md`${phase}… the buttons come back when it is done.`)];
}

export function homeTab({ environments, own, notice, unavailable, refused }: HomeInput): HomeView {
  const blocks: Block[] = [section(md`*Dev environments*`)];
  if (refused) {
    blocks.push(
      section(
        refused.by === 'user'
          ? md`:no_entry: You are not allowed to see the environments here. Ask an admin to add ${mention(refused.user)} to the read allow-list.`
          : md`:no_entry: The environments are shown only in some channels (the read allow-list), and this tab is in none: use ${code('/devenv list')} there.`,
      ),
    );
    return homeView(blocks);
  }
  if (notice) blocks.push(...notice.message.blocks.slice(0, NOTICE_BLOCKS), context(md`${slackDate(notice.at.toISOString())}`), divider());
  if (unavailable !== undefined) {
    blocks.push(section(md`:warning: The environments could not be listed just now (${unavailable}). Open this tab again in a minute.`));
    return homeView(blocks);
  }
  if (environments.length === 0) {
    blocks.push(section(md`No environments are enrolled yet.`));
    return homeView(blocks);
  }
  const mine = environments.filter((e) => own.has(e.namespace));
  const others = environments.filter((e) => !own.has(e.namespace));
  const shown = [...mine, ...others].slice(0, HOME_MAX_ENVIRONMENTS);
  const shownMine = shown.filter((e) => own.has(e.namespace));
  const shownOthers = shown.filter((e) => !own.has(e.namespace));
  if (shownMine.length) {
    blocks.push(section(md`*Yours* (${mine.length})`));
    for (const e of shownMine) blocks.push(...environmentBlocks(e, true));
  } else {
    blocks.push(context(md`None of these names you as an owner (namespace annotation ${code('devenv-scheduler/owners')}).`));
  }
  if (shownOthers.length) {
    if (shownMine.length) blocks.push(divider());
    blocks.push(section(md`*${shownMine.length ? 'Others' : 'All'}* (${others.length})`));
    for (const e of shownOthers) blocks.push(...environmentBlocks(e, false));
  }
  const hidden = environments.length - shown.length;
  if (hidden > 0) blocks.push(context(md`…and ${hidden} more: ${code('/devenv list')} lists them all.`));
  return homeView(blocks);
}
