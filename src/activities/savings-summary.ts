/**
 * The weekly savings summary: the ledgers from the environments' memos (the Temporal server
 * alone, no worker query), one message per environment that saved something, posted to its
 * channel as its warnings are, and the total to the default channel.
 *
 * One channel failing does not hold up the others: every post is tried, then the activity
 * fails if any did, and Temporal's retry policy tries again. What an attempt posted is
 * recorded in its heartbeat details, which the next attempt reads and skips.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { EnvironmentLedger } from '../client/environments';
import { savingsReport, type Prices } from '../domain/savings';
import type { Logger } from '../logger';
import { weeklySavingsMessages } from '../slack/replies';
import type { SlackMessage } from '../slack/blocks';
import type { SavingsSummaryActivities, SavingsSummaryReport } from './contracts';
import type { SlackPoster } from './slack';

/** Where the total went, among the namespaces an attempt posted to. */
const TOTAL = '*';

interface Progress {
  posted: string[];
}

export interface SavingsSummaryOptions {
  ledgers: () => Promise<EnvironmentLedger[]>;
  prices?: Prices;
  poster: SlackPoster;
  logger: Logger;
}

export function createSavingsSummaryActivities(options: SavingsSummaryOptions): SavingsSummaryActivities {
  const { poster, logger } = options;
  return {
    async postSavingsSummary(at: string): Promise<SavingsSummaryReport> {
      const context = Context.current();
      const earlier = context.info.heartbeatDetails as Progress | undefined;
      const posted = new Set(earlier?.posted ?? []);
      const report = savingsReport(await options.ledgers(), 'week', new Date(at), options.prices);
      const { environments, total } = weeklySavingsMessages(report);
      context.heartbeat({ posted: [...posted] } satisfies Progress);
      const posts: { key: string; send: () => Promise<void> }[] = environments.map(({ namespace, message }) => ({
        key: namespace,
        send: () => poster.toNamespace({ namespace, kind: 'savings' }, message),
      }));
      if (total) posts.push({ key: TOTAL, send: () => poster.toDefault({ namespace: TOTAL, kind: 'savings' }, total) });
      const failed: { key: string; error: unknown }[] = [];
      for (const { key, send } of posts) {
        if (posted.has(key)) continue;
        try {
          await send();
          posted.add(key);
          context.heartbeat({ posted: [...posted] } satisfies Progress);
        } catch (error) {
          failed.push({ key, error });
        }
      }
      if (failed.length > 0) {
        logger.warn({ failed: failed.map((f) => f.key), posted: posted.size }, 'weekly savings summary: some posts failed; retrying those');
        // A failure worth retrying decides how Temporal retries (a rate limit brings its delay): one refused message must not stop the rest.
        const retryable = failed.find((f) => !(f.error instanceof ApplicationFailure && f.error.nonRetryable));
        throw (retryable ?? failed[0]!).error;
      }
      const summary = {
        posted: [...posted].filter((key) => key !== TOTAL).sort(),
        total: posted.has(TOTAL),
        quiet: report.environments.length - environments.length,
      };
      logger.info(summary, 'weekly savings summary posted');
      return summary;
    },
  };
}

/** Without Slack: what the summary would post, in the log. */
export function createLogPoster(logger: Logger): SlackPoster {
  const log = (where: string) => async (subject: { namespace: string; kind: string }, message: SlackMessage) => {
    logger.info({ namespace: subject.namespace, kind: subject.kind, to: where }, `[no Slack configured] ${message.text}`);
  };
  return { toNamespace: log('namespace channel'), toDefault: log('default channel') };
}
