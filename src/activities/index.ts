/**
 * Builds every activity implementation the worker registers, from the validated config.
 * Each system's activities live in their own file; this only chooses and connects them.
 */
import { KubeConfig } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import type { Metrics } from '../api/metrics';
import { createConfiguredEnrolment } from '../client/enrolment';
import { createEnvironmentsClient } from '../client/environments';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { createAwsActivities, ensureInventoryTable } from './aws';
import type { AwsSettings } from './aws/sdk';
import type { AllActivities } from './contracts';
import { createEventRecorder, withEvents } from './events';
import { createEnrolmentActivities } from './enrolment';
import { createKubernetesActivities } from './kubernetes';
import { probeCluster } from './kubernetes/cluster';
import { createNamespaceLister, createSlackChannelLookup } from './kubernetes/namespaces';
import { createLogNotifier } from './log-notifier';
import { createSchedulerActivities } from './scheduler';
import { createLogPoster, createSavingsSummaryActivities } from './savings-summary';
import { createSlackNotifier, createSlackPoster } from './slack';

/** In a pod: its ServiceAccount; elsewhere: KUBECONFIG or ~/.kube/config, as kubectl does. */
export function loadKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}

export function configuredAwsSettings(config: Config, logger: Logger, metrics?: Pick<Metrics, 'awsOutcomes'>): AwsSettings {
  return {
    regions: config.aws.regions,
    endpoint: config.aws.endpoint,
    tableName: config.aws.inventoryTable,
    tableRegion: config.aws.inventoryTableRegion,
    cacheMaxAgeMs: config.aws.inventoryMaxAgeMinutes * 60_000,
    dryRun: config.dryRun,
    logger: logger.child({ system: 'aws' }),
    databaseWait: { timeoutMs: config.kubernetes.startReadyTimeoutMs },
    ...(metrics ? { outcomes: metrics.awsOutcomes } : {}),
  };
}

/** `kubeConfig`: the cluster the activities act on (default: the current kubeconfig, as kubectl's). */
export async function createActivities(
  config: Config,
  logger: Logger,
  client: Client,
  metrics?: Pick<Metrics, 'awsOutcomes'>,
  kubeConfig: KubeConfig = loadKubeConfig(),
): Promise<AllActivities> {
  const aws = configuredAwsSettings(config, logger, metrics);
  // Fail at start-up, naming the setting, rather than at the first shutdown.
  await ensureInventoryTable(aws);
  const kubeLogger = logger.child({ system: 'kubernetes' });
  const { botToken, defaultChannel, apiUrl } = config.slack;
  const slack =
    botToken && defaultChannel
      ? {
          token: botToken,
          slackApiUrl: apiUrl,
          defaultChannel,
          channelFor: createSlackChannelLookup(kubeConfig, kubeLogger),
          logger: logger.child({ system: 'slack' }),
        }
      : undefined;
  const notifier = slack ? createSlackNotifier(slack) : createLogNotifier(logger);
  return {
    ...createKubernetesActivities({
      kubeConfig,
      dryRun: config.dryRun,
      logger: kubeLogger,
      ...config.kubernetes,
      support: { namespace: config.support.namespace, image: config.support.image, sizes: config.support.sizes },
    }),
    ...createAwsActivities(aws),
    // DRY_RUN writes nothing to the cluster, Events included.
    ...(config.dryRun ? notifier : withEvents(notifier, createEventRecorder(kubeConfig, kubeLogger))),
    ...createSchedulerActivities(client, config.temporal.cluster),
    ...createSavingsSummaryActivities({
      ledgers: () => createEnvironmentsClient(client, { cluster: config.temporal.cluster }).ledgers(),
      prices: config.savings.prices,
      poster: slack ? createSlackPoster(slack) : createLogPoster(logger),
      logger: logger.child({ system: 'savings' }),
    }),
    ...createEnrolmentActivities({
      client,
      enrolment: createConfiguredEnrolment(config, client),
      listNamespaces: createNamespaceLister(kubeConfig),
      probe: () => probeCluster(kubeConfig),
      logger: logger.child({ system: 'enrolment' }),
      dryRun: config.dryRun,
    }),
  };
}
