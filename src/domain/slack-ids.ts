/**
 * Slack ids, recognised in one place: a user id (`U024BE7LH`, `W…` on Enterprise Grid), a
 * channel id (`C…`, `G…` for older private channels, `D…` for direct messages) or a user-group
 * id (`S…`). Only upper-case letters and digits, so an id can never carry Slack markup (`<`,
 * `>`, `|`, `!`).
 */
export const SLACK_USER_ID = /^[UW][A-Z0-9]{2,31}$/;
export const SLACK_CHANNEL_ID = /^[CGD][A-Z0-9]{2,31}$/;
/** A user group (`S0614TZR7`), mentioned as `<!subteam^S…>`. */
export const SLACK_GROUP_ID = /^S[A-Z0-9]{2,31}$/;

export const isSlackUserId = (value: string): boolean => SLACK_USER_ID.test(value);
export const isSlackChannelId = (value: string): boolean => SLACK_CHANNEL_ID.test(value);
export const isSlackGroupId = (value: string): boolean => SLACK_GROUP_ID.test(value);
