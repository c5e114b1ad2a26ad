/**
 * The members of the Slack user groups named as owners (`usergroups.users.list`, bot scope
 * `usergroups:read`), for the owners rule and for `list`. Remembered for a while: a `list`
 * asks about every group any environment names, and membership changes rarely.
 */
import { slackWebClient } from './web-client';
import type { GroupMembers } from '../domain/owners';
import type { Logger } from '../logger';

export interface GroupMembersOptions {
  /** Bot token (`xoxb-...`); never logged. */
  token: string;
  slackApiUrl?: string;
  logger: Logger;
  /** How long an answer is used; a failed look-up is not remembered. */
  ttlMs?: number;
}

const DEFAULT_TTL_MS = 5 * 60_000;
const REQUEST_TIMEOUT_MS = 5_000;

export function createGroupMembers({ token, slackApiUrl, logger, ttlMs = DEFAULT_TTL_MS }: GroupMembersOptions): GroupMembers {
  const slack = slackWebClient(token, { slackApiUrl, timeoutMs: REQUEST_TIMEOUT_MS });
  const known = new Map<string, { at: number; members: Promise<readonly string[]> }>();
  return (group) => {
    const cached = known.get(group);
    if (cached && Date.now() - cached.at < ttlMs) return cached.members;
    const members = slack.usergroups.users.list({ usergroup: group }).then(
      (answer) => answer.users ?? [],
      (err: unknown) => {
        if (known.get(group)?.members === members) known.delete(group);
        const coded = err as { code?: string; data?: { error?: string } };
        logger.warn(
          { group, error: coded.data?.error ?? coded.code ?? String(err) },
          'the members of a Slack user group could not be read',
        );
        throw err;
      },
    );
    known.set(group, { at: Date.now(), members });
    return members;
  };
}
