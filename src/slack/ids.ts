/** Slack ids are recognised in src/domain/slack-ids.ts, where the policy's owners are validated too; the channel annotation is Slack's alone. */
export { SLACK_CHANNEL_ID, SLACK_GROUP_ID, SLACK_USER_ID, isSlackChannelId, isSlackGroupId, isSlackUserId } from '../domain/slack-ids';
import { isSlackChannelId } from '../domain/slack-ids';

/** The annotation with which a namespace picks its own Slack channel. */
export const SLACK_CHANNEL_ANNOTATION = 'devenv-scheduler/slack-channel';

/** Why a value is not a channel id, for the webhook's warning; undefined when it is one. */
export function slackChannelIdError(value: string): string | undefined {
  return isSlackChannelId(value)
    ? undefined
    : 'must be a Slack channel id such as C0123456789 (channel details, at the bottom), not a name or a mention';
}
