/**
 * Slack ids, recognised in one place: a user id (`U024BE7LH`, `W…` on Enterprise Grid) or a
 * channel id (`C…`, `G…` for older private channels, `D…` for direct messages). Only upper-case
 * letters and digits, so an id can never carry Slack markup (`<`, `>`, `|`, `!`).
 */
export const SLACK_USER_ID = /^[UW][A-Z0-9]{2,31}$/;
export const SLACK_CHANNEL_ID = /^[CGD][A-Z0-9]{2,31}$/;

export const isSlackUserId = (value: string): boolean => SLACK_USER_ID.test(value);
export const isSlackChannelId = (value: string): boolean => SLACK_CHANNEL_ID.test(value);

/** The annotation with which a namespace picks its own Slack channel. */
export const SLACK_CHANNEL_ANNOTATION = 'devenv-scheduler/slack-channel';

/** Why a value is not a channel id, for the webhook's warning; undefined when it is one. */
export function slackChannelIdError(value: string): string | undefined {
  return isSlackChannelId(value)
    ? undefined
    : 'must be a Slack channel id such as C0123456789 (channel details, at the bottom), not a name or a mention';
}
