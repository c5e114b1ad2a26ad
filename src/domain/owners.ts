/**
 * An environment's owners: the namespace annotation `devenv-scheduler/owners`, a list of
 * Slack ids, users (`U…`, `W…` on Enterprise Grid) and user groups (`S…`). Warnings mention
 * them, `list` shows each person their own environments first, and with
 * SLACK_OWNERS_ONLY=control only they (and SLACK_ADMINS) may stop or prolongate.
 *
 * Ids, never handles (`@ana`) or names: a handle is not unique, can be renamed, and would
 * have to be looked up; an id is what Slack's own mention markup carries. And only ids:
 * anyone who may annotate a namespace writes this string, so nothing else in it may ever
 * reach Slack (`<!channel>`, links, formatting). A value with any entry that is not an id
 * is ignored as a whole, never partly applied.
 */
import { z } from 'zod';
import { isSlackGroupId, SLACK_GROUP_ID, SLACK_USER_ID } from './slack-ids';

export const OWNERS_ANNOTATION = 'devenv-scheduler/owners';

/** More would make every warning a wall of mentions; a team that large is a user group. */
export const MAX_OWNERS = 20;

/** How much of a refused entry the warning quotes: enough to find it, never a whole hostile value. */
const SHOWN_CHARACTERS = 40;

function shown(entry: string): string {
  return JSON.stringify(entry.length > SHOWN_CHARACTERS ? `${entry.slice(0, SHOWN_CHARACTERS)}…` : entry);
}

/** Why an entry is not an owner id, or undefined when it is one. */
function entryProblem(entry: string): string | undefined {
  if (SLACK_USER_ID.test(entry) || SLACK_GROUP_ID.test(entry)) return undefined;
  if (entry.startsWith('@'))
    return `${shown(entry)} is a handle; owners are Slack ids: a member id (U…, "Copy member ID" in the profile) or a user-group id (S…)`;
  if (/^[uwsUWS][A-Za-z0-9]{2,31}$/.test(entry)) return `${shown(entry)} is not a Slack id: ids are upper-case letters and digits`;
  return `${shown(entry)} is not a Slack user id (U…, W…) or user-group id (S…)`;
}

/** The annotation's value: ids separated by commas or spaces, duplicates dropped, in the order written. */
export const ownersValue = z.string().transform((text, ctx) => {
  const entries = text.split(/[\s,]+/).filter((entry) => entry !== '');
  if (entries.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'must name at least one Slack user id (U…) or user-group id (S…)' });
    return z.NEVER;
  }
  const ids = [...new Set(entries)];
  if (ids.length > MAX_OWNERS) {
    ctx.addIssue({ code: 'custom', message: `names ${ids.length} owners; at most ${MAX_OWNERS} (use a user group for a larger team)` });
    return z.NEVER;
  }
  const problem = ids.map(entryProblem).find((p) => p !== undefined);
  if (problem) {
    ctx.addIssue({ code: 'custom', message: problem });
    return z.NEVER;
  }
  return ids;
});

/** The members of a user group, as Slack lists them. */
export type GroupMembers = (group: string) => Promise<readonly string[]>;

/**
 * Whether `user` is one of `owners`: named, or a member of a named group. A group that
 * cannot be read counts as not containing them, and is returned so a refusal can say so.
 */
export async function ownership(
  user: string,
  owners: readonly string[],
  membersOf: GroupMembers | undefined,
): Promise<{ owner: boolean; unreadGroups: string[] }> {
  if (owners.includes(user)) return { owner: true, unreadGroups: [] };
  const unreadGroups: string[] = [];
  for (const group of owners.filter(isSlackGroupId)) {
    try {
      if (!membersOf) throw new Error('no Slack bot token');
      if ((await membersOf(group)).includes(user)) return { owner: true, unreadGroups: [] };
    } catch {
      unreadGroups.push(group);
    }
  }
  return { owner: false, unreadGroups };
}

/**
 * Who may stop or prolongate an environment with owners under SLACK_OWNERS_ONLY=control:
 * `controlByOwnersOnly` off, everyone (the default); on, its owners and `admins`. Only a
 * Slack user is a person here: REST tokens (`api:<name>`) and the operators' CLI are not
 * limited, like admins. An environment without owners is anyone's.
 */
export interface OwnersPolicy {
  controlByOwnersOnly: boolean;
  /** SLACK_ADMINS: user ids that may stop and prolongate any environment. */
  admins: readonly string[];
  membersOf?: GroupMembers;
}
