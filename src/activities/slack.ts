/**
 * The `notify` activity for Slack: shutdown warnings (with "Prolongate 1h" and "Stop now"
 * buttons), shutdown and start announcements, posted with chat.postMessage.
 *
 * Retries belong to Temporal, not to the Web API client: every failed post fails the
 * activity, so each attempt is visible in the workflow's history and the workflow's retry
 * policy (with its one-hour limit) decides when to give up. A 429 tells Temporal to wait
 * exactly as long as Slack's Retry-After asks.
 */
import { webApi } from '@slack/bolt';
import { slackWebClient } from '../slack/web-client';
import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../domain/failures';
import { driftDone, UNKNOWN_MANAGER, whatWoke } from '../domain/drift';
import { describeReadiness } from '../domain/readiness';
import type { Logger } from '../logger';
import {
  channelLink,
  code,
  context,
  formatDuration,
  joinMd,
  md,
  mention,
  message,
  ownerMentions,
  section,
  slackDate,
  warningButtons,
  withMentions,
  workloadCount,
  type Block,
  type Mrkdwn,
  type SlackMessage,
} from '../slack/blocks';
import { isSlackChannelId, SLACK_CHANNEL_ANNOTATION } from '../slack/ids';
import type { EnvironmentActivities, EnvironmentEvent } from './contracts';

export interface SlackNotifierOptions {
  /** Bot token (`xoxb-...`); never logged. */
  token: string;
  /** Where the Web API lives; tests point it at a local recording server. */
  slackApiUrl?: string;
  /** Channel id (or name) for namespaces without a channel of their own. */
  defaultChannel: string;
  /**
   * The namespace's own channel (its `devenv-scheduler/slack-channel` annotation), if it has one.
   * Whatever it returns is used only if it is a channel id; anything else sends the message to
   * the default channel, with a note saying why.
   */
  channelFor?: (namespace: string) => string | undefined | Promise<string | undefined>;
  logger: Logger;
}

/** The namespace's channel cannot take the post; the default channel still can. */
const CHANNEL_ERRORS = new Set(['channel_not_found', 'not_in_channel', 'is_archived', 'restricted_action']);
/** The message itself is wrong: retrying the same request cannot succeed. */
const MESSAGE_ERRORS = new Set(['invalid_blocks', 'invalid_blocks_format', 'invalid_arguments', 'msg_too_long', 'no_text']);

const REQUEST_TIMEOUT_MS = 10_000;

/** What a post is about, for the log and the failure: the namespace it concerns (or `*` for all of them), and its kind. */
export interface PostSubject {
  namespace: string;
  kind: string;
}

export interface SlackPoster {
  /** To the namespace's own channel, or to the default channel (with a note saying why) when it has none or it refuses. */
  toNamespace(subject: PostSubject, message: SlackMessage): Promise<void>;
  toDefault(subject: PostSubject, message: SlackMessage): Promise<void>;
}

export function createSlackPoster(options: SlackNotifierOptions): SlackPoster {
  const { logger, defaultChannel } = options;
  const slack = slackWebClient(options.token, { slackApiUrl: options.slackApiUrl, timeoutMs: REQUEST_TIMEOUT_MS });

  async function post(channel: string, message: SlackMessage): Promise<void> {
    await slack.chat.postMessage({ channel, text: message.text, blocks: message.blocks, unfurl_links: false });
  }

  return {
    async toNamespace(event: PostSubject, message: SlackMessage): Promise<void> {
      const own = await options.channelFor?.(event.namespace);
      if (own !== undefined && !isSlackChannelId(own)) {
        // Never posted to, never shown raw: an annotation is a hint, and not a channel id is no channel.
        logger.warn(
          { namespace: event.namespace, annotation: SLACK_CHANNEL_ANNOTATION },
          'the namespace channel annotation is not a Slack channel id; using the default channel',
        );
        const shown = own.length > 80 ? `${own.slice(0, 80)}…` : own;
        await deliverOrFail(
          () =>
            post(
              defaultChannel,
              withNote(
                message,
                md`Posted here because this namespace's ${code(SLACK_CHANNEL_ANNOTATION)} annotation is not a channel id: ${code(shown)}.`,
              ),
            ),
          event,
        );
        return;
      }
      const channel = own ?? defaultChannel;
      try {
        await post(channel, message);
      } catch (err) {
        const code = platformError(err);
        if (code && CHANNEL_ERRORS.has(code) && channel !== defaultChannel) {
          // A warning must reach someone: a wrong annotation or a bot not invited falls back to the default channel.
          logger.warn(
            { namespace: event.namespace, channel, error: code },
            'cannot post to the namespace channel; using the default channel',
          );
          await deliverOrFail(
            () => post(defaultChannel, withNote(message, md`Posted here because ${channelLink(channel)} refused it (${code}).`)),
            event,
          );
          return;
        }
        throw toFailure(err, event);
      }
      logger.info({ namespace: event.namespace, kind: event.kind, channel }, 'Slack notification posted');
    },

    async toDefault(event: PostSubject, message: SlackMessage): Promise<void> {
      await deliverOrFail(() => post(defaultChannel, message), event);
      logger.info({ namespace: event.namespace, kind: event.kind, channel: defaultChannel }, 'Slack notification posted');
    },
  };

  async function deliverOrFail(send: () => Promise<void>, event: PostSubject): Promise<void> {
    try {
      await send();
    } catch (err) {
      throw toFailure(err, event);
    }
  }

  /** Rate limits carry Slack's delay; message errors stop retrying; everything else is retried by Temporal's policy. */
  function toFailure(err: unknown, event: PostSubject): Error {
    const coded = err as { code?: string; retryAfter?: number; data?: { error?: string } };
    logger.warn(
      { namespace: event.namespace, kind: event.kind, error: coded.data?.error ?? coded.code ?? String(err) },
      'Slack notification failed; it will be retried',
    );
    if (coded.code === webApi.ErrorCode.RateLimitedError && typeof coded.retryAfter === 'number') {
      return ApplicationFailure.create({
        message: `Slack rate limit: retry after ${coded.retryAfter} s`,
        type: Failure.SlackRateLimited,
        nextRetryDelay: `${Math.max(1, coded.retryAfter)} seconds`,
      });
    }
    const code = platformError(err);
    if (code && MESSAGE_ERRORS.has(code)) {
      logger.error({ namespace: event.namespace, kind: event.kind, error: code }, 'Slack refused the message itself; not retrying');
      return ApplicationFailure.nonRetryable(`Slack refused the ${event.kind} message: ${code}`, Failure.SlackMessageRejected);
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

export function createSlackNotifier(options: SlackNotifierOptions): Pick<EnvironmentActivities, 'notify'> {
  const poster = createSlackPoster(options);
  return {
    notify: (event: EnvironmentEvent) => poster.toNamespace(event, eventMessage(event)),
  };
}

function platformError(err: unknown): string | undefined {
  const coded = err as { code?: string; data?: { error?: string } };
  return coded.code === webApi.ErrorCode.PlatformError ? coded.data?.error : undefined;
}

function withNote(original: SlackMessage, note: Mrkdwn): SlackMessage {
  return { text: original.text, blocks: [...original.blocks, context(note)] };
}

/** What one half of the action could not do, said in the text too (it is what notifications and screen readers show). */
function withProblems(problems: string[] | undefined, text: Mrkdwn, blocks: Block[]): SlackMessage {
  if (!problems?.length) return message(text, blocks);
  const shown = problems.map((p) => md`${p}`);
  return message(md`${text}. ${joinMd(shown, '. ')}`, [...blocks, section(md`:warning: ${joinMd(shown, '\n:warning: ')}`)]);
}

/** What the channel reads; `by` is a Slack user id (shown as a mention), `scheduler`, or a name such as `api:ci` (shown as it is). */
export function eventMessage(event: EnvironmentEvent): SlackMessage {
  const ns = event.namespace;
  switch (event.kind) {
    case 'warning': {
      // Mentioned in the fallback text too: it is what the owners' notification shows.
      const owners = event.owners?.length ? ownerMentions(event.owners) : undefined;
      return message(md`${ns} shuts down in ${event.minutesLeft} minutes${owners ? md` (owners: ${owners})` : ''}`, [
        section(md`:hourglass: *${ns}* shuts down in *${event.minutesLeft} minutes* (${slackDate(event.shutdownAt)}).`),
        ...(owners ? [section(md`Owners: ${owners}`)] : []),
        warningButtons(ns),
        context(md`Or type ${code(`/devenv prolongate ${ns} for 2h`)}.`),
      ]);
    }
    case 'stopped': {
      const who = event.by === 'scheduler' ? md`on schedule` : md`by ${mention(event.by)}`;
      const done = `${workloadCount(event.report.changed.length)} scaled to 0`;
      return withProblems(event.problems, md`${ns} stopped ${who}: ${done}`, [
        section(md`:black_square_for_stop: *${ns}* stopped ${who}: ${done}.`),
        context(md`took ${formatDuration(event.report.durationMs)} · ${code(`/devenv start ${ns}`)} wakes it`),
      ]);
    }
    case 'started': {
      const done = `${workloadCount(event.report.changed.length)} restored${describeReadiness(event.report)}`;
      // Interrupted by a stop, it has no shutdown of its own to tell: the stop's message follows.
      const interrupted = event.report.readiness?.interrupted !== undefined || event.report.databases?.interrupted !== undefined;
      const until = event.shutdownAt ? md`; shuts down ${slackDate(event.shutdownAt)}` : interrupted ? md`` : md`; no scheduled shutdown`;
      if (event.wokeUp) {
        const woke = md`Good morning: ${ns} was started at ${event.wokeUp.clock}, as scheduled`;
        return withProblems(event.problems, woke, [
          section(md`:sunrise: ${woke}: ${done}${until}.`),
          context(md`took ${formatDuration(event.report.durationMs)} · ${code(`/devenv stop ${ns}`)} if nobody needs it today`),
        ]);
      }
      // `by` may read "U024BE7LH (leaving management)": the id in it is the recorded `by`.
      const who = withMentions(event.by, [event.by.split(' ')[0]]);
      return withProblems(event.problems, md`${ns} started by ${who}: ${done}`, [
        section(md`:arrow_forward: *${ns}* started by ${who}: ${done}${until}.`),
        context(md`took ${formatDuration(event.report.durationMs)}`),
      ]);
    }
    case 'aws-followed':
      return withProblems(event.problems, md`${ns}: ${event.detail}`, [section(md`:cloud: *${ns}*: ${event.detail}.`)]);
    case 'drift': {
      const woken = joinMd(
        event.workloads.map((w) => (w.by ? md`${whatWoke(w)} by field manager ${code(w.by)}` : md`${whatWoke(w)} by ${UNKNOWN_MANAGER}`)),
        '; ',
      );
      const said = md`woke while stopped: ${woken}. ${driftDone(event.mode)}`;
      return message(md`${ns} ${said}`, [section(md`:alarm_clock: *${ns}* ${said}.`)]);
    }
  }
}
