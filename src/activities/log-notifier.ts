/**
 * The notifier used when no Slack bot token is configured: every warning, shutdown and
 * start is written to the log instead, so a local run shows exactly what Slack would get.
 */
import type { Logger } from '../logger';
import type { EnvironmentActivities, EnvironmentEvent } from './contracts';

export function createLogNotifier(logger: Logger): Pick<EnvironmentActivities, 'notify'> {
  return {
    async notify(event: EnvironmentEvent): Promise<void> {
      logger.info({ event }, `[no Slack configured] ${event.kind} for ${event.namespace}`);
    },
  };
}
