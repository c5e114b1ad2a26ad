/**
 * `npm start`: the whole service in one process. Without TEMPORAL_ADDRESS it first starts
 * a local Temporal dev server (the embedded default); with it, it joins that cluster.
 * Then it registers what Temporal needs, runs the worker and serves the API.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { Client } from '@temporalio/client';
import { Runtime, makeTelemetryFilterString, type Worker } from '@temporalio/worker';
import { configuredAwsSettings, createActivities, loadKubeConfig } from './activities';
import { createAwsStatusReader } from './activities/aws';
import { probeCluster, type ClusterProbe } from './activities/kubernetes/cluster';
import { createNamespaceStatusReader } from './activities/kubernetes/namespace-status';
import { createNamespaceReader } from './activities/kubernetes/namespaces';
import { createSupportPodReader } from './activities/kubernetes/support-pods';
import { ADMISSION_DRAIN_MS, createAdmissionWebhook, type AdmissionWebhook } from './api/admission';
import { createRestRouter } from './api/rest';
import { createUiRouter } from './api/ui';
import { savingsReport } from './domain/savings';
import { createApi, listenApi } from './api/server';
import { createMetrics, type Metrics } from './api/metrics';
import { startDriftWatch } from './client/drift-watch';
import { createConfiguredEnrolment } from './client/enrolment';
import { measuredActivities } from './activities/measured';
import { createSlackHandlers, type SlackHandlerOptions } from './api/slack/handlers';
import { createSlackHome } from './api/slack/home';
import { createResponder } from './api/slack/responder';
import { createSlackRouter } from './api/slack/router';
import { createSlackSocketMode, type SlackSocketMode } from './api/slack/socket-mode';
import { startWebhookServer, type WebhookServer } from './api/webhook';
import { ConfigError, loadConfig, type Config } from './config';
import { createEnvironmentsClient, type EnvironmentsClient, type SupportPolicy } from './client/environments';
import type { OwnersPolicy } from './domain/owners';
import { createGroupMembers } from './slack/usergroups';
import { createLogger, type Logger } from './logger';
import { LocalClusterUnavailable, startLocalCluster, type LocalCluster } from './local-cluster';
import { connectClient, connectNative, TemporalConnectError } from './temporal/connection';
import { startDevServer, type DevServer } from './temporal/dev-server';
import { sdkLogger } from './temporal/sdk-logger';
import { httpCloseTimeoutMs } from './shutdown';
import { ensureSchedules, RECONCILE_SCHEDULE_ID, registerSearchAttributes } from './temporal/setup';
import { createWorker } from './worker';
import { scopedId } from './workflows/cluster';

/** What a start-up that fails halfway must not leave behind (the local dev server). */
const cleanUpOnFailure: (() => Promise<void>)[] = [];

/** A second SIGINT or SIGTERM within this of the first is the same one passed on (by npm); later, it stops the process at once. */
const REPEATED_SIGNAL_MS = 2000;

/** A running environment this long past its shutdown counts as overdue (devenv_environments_overdue): its stop did not happen. */
const OVERDUE_AFTER_MS = 5 * 60_000;

async function main(config: Config, logger: Logger): Promise<void> {
  try {
    // main owns SIGINT/SIGTERM (below), so the API and webhook stop before the worker drains.
    Runtime.install({
      shutdownSignals: [],
      logger: sdkLogger(logger),
      telemetryOptions: {
        logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) },
        // The SDK's own figures (workflow and activity task latencies, failures, polls) on their own port.
        ...(config.temporal.metricsPort !== undefined
          ? { metrics: { prometheus: { bindAddress: `0.0.0.0:${config.temporal.metricsPort}` } } }
          : {}),
      },
    });
  } catch (err) {
    // The usual cause is a second `npm start` on this machine, whose first holds the port.
    throw new ConfigError([
      `TEMPORAL_METRICS_PORT=${config.temporal.metricsPort}: ${(err as Error).message}; set TEMPORAL_METRICS_PORT to a free port, or to off`,
    ]);
  }
  const runsWorker = config.role !== 'api';
  const servesUsers = config.role !== 'worker';

  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig();
  } catch (err) {
    throw new ConfigError([
      `KUBECONFIG=${JSON.stringify(process.env.KUBECONFIG ?? '')}: ${(err as Error).message} (unset it to use ~/.kube/config)`,
    ]);
  }
  const kubeSource = kubeConfigSource();
  // Asked once, while Temporal starts: the banner says what was found, and how to point at a cluster if none was.
  const cluster = kubeSource ? probeCluster(kubeConfig) : undefined;
  // No kubeconfig anywhere: the local control plane, started while Temporal starts (LOCAL_CLUSTER=auto).
  let localClusterProblem: string | undefined;
  const localStarting =
    !kubeSource && config.localCluster.mode === 'auto'
      ? startLocalCluster({ dir: config.localCluster.dir }).catch((err: Error) => {
          if (err instanceof LocalClusterUnavailable) {
            localClusterProblem = err.message;
            return undefined;
          }
          throw new ConfigError([
            `LOCAL_CLUSTER=auto (no kubeconfig found): the local control plane did not start: ${err.message.split('\n')[0]}; set KUBECONFIG to a cluster's kubeconfig, or LOCAL_CLUSTER=off`,
          ]);
        })
      : undefined;
  // Handled here so that a failure of the Temporal start first is not also an unhandled rejection; awaited below.
  localStarting?.catch(() => undefined);
  cleanUpOnFailure.push(async () => (await localStarting?.catch(() => undefined))?.stop());

  let devServer: DevServer | undefined;
  let address = config.temporal.address;
  if (!address) {
    logger.info(
      'TEMPORAL_ADDRESS not set (nor a temporal.toml profile with an address): the local Temporal dev server on TEMPORAL_DEV_PORT',
    );
    devServer = await startDevServer({
      port: config.temporal.devServerPort,
      uiPort: config.temporal.uiPort,
      dbFile: config.temporal.devDbFile,
      namespace: config.temporal.namespace,
    });
    address = devServer.address;
    const started = devServer;
    cleanUpOnFailure.push(() => started.stop());
  }
  const localCluster: LocalCluster | undefined = await localStarting;
  if (localCluster) kubeConfig = localCluster.kubeConfig;
  const { namespace, taskQueue } = config.temporal;
  // The local dev server speaks plaintext; TLS and API keys are for a cluster (config.ts refuses them without an address).
  const remote = devServer ? {} : config.temporal.connection;
  const security = !devServer
    ? config.temporal.security
    : devServer.startedHere
      ? 'local dev server'
      : 'a Temporal already listening on TEMPORAL_DEV_PORT, joined: not started here, and left running when this process stops';

  // A certificate, server or API key refused ends the start here, with one line saying why (main's catch).
  const connection = await connectClient(address, remote);
  const client = new Client({ connection, namespace });
  // A dev server started here has them from its flags; one found on the port may not.
  if (!devServer?.startedHere) await registerSearchAttributes(connection, namespace);

  const clusterName = config.temporal.cluster;
  // Counts of environments come from the worker role alone, so that a sum over every pod counts each environment once;
  // this cluster's alone, so that clusters sharing a Temporal namespace do not count each other's.
  const environments = createEnvironmentsClient(client, { cluster: clusterName });
  const metrics = createMetrics(
    runsWorker
      ? {
          environmentsByPhase: () => environments.countByPhase(),
          environmentsOverdue: () => environments.countOverdue(OVERDUE_AFTER_MS),
          savingsThisWeek: cachedFor(
            SAVINGS_METRICS_MAX_AGE_MS,
            async () => savingsReport(await environments.ledgers(), 'week', new Date(), config.savings.prices).total,
          ),
        }
      : {},
  );

  let worker: Worker | undefined;
  let schedules: Record<string, string> = {};
  if (runsWorker) {
    schedules = await ensureSchedules(client, config);
    worker = await createWorker({
      connection: await connectNative(address, remote),
      namespace,
      taskQueue,
      activities: measuredActivities(await createActivities(config, logger, client, metrics, kubeConfig), metrics),
      ...config.worker,
    });
  }
  const workerRun = worker?.run();
  // A workload woken behind a stopped environment's back has it look at once, not at its next interval.
  const driftWatch =
    worker && (kubeSource || localCluster) && config.kubernetes.drift.mode !== 'off' && !config.dryRun
      ? startDriftWatch({ kubeConfig, client, cluster: clusterName, logger })
      : undefined;
  // Repair at once whatever changed while no worker ran, rather than at the next interval; with no kubeconfig there is nothing to repair.
  if (worker && (kubeSource || localCluster)) await client.schedule.getHandle(scopedId(RECONCILE_SCHEDULE_ID, clusterName)).trigger();

  const { signingSecret, appToken } = config.slack;
  // One gateway for Slack and REST, so their requesters count against the same support-pod limits. The support
  // namespace is read with the API's read-only identity: `support list` and the name check of `support start`.
  const owners = servesUsers ? ownersPolicy(config, logger) : undefined;
  const gateway = servesUsers
    ? createEnvironmentsClient(client, {
        cluster: clusterName,
        support: supportPolicy(config),
        supportPods: createSupportPodReader(kubeConfig, config.support.namespace),
        owners,
      })
    : undefined;
  // Published with the bot token, for whichever way Slack's events arrive.
  const home =
    gateway && (signingSecret || appToken) && config.slack.botToken
      ? createSlackHome({
          environments: gateway,
          token: config.slack.botToken,
          slackApiUrl: config.slack.apiUrl,
          logger: logger.child({ system: 'slack-home' }),
          membersOf: owners?.membersOf,
          allow: config.slack.allow.read,
        })
      : undefined;
  const slackHandling =
    gateway && (signingSecret || appToken) ? { ...slackOptions(config, gateway, logger, metrics, kubeConfig), home } : undefined;
  const slackHandlers = slackHandling ? createSlackHandlers(slackHandling) : undefined;
  const slack =
    slackHandling && slackHandlers && signingSecret
      ? createSlackRouter({ handlers: slackHandlers, signingSecret, logger: slackHandling.logger })
      : undefined;
  let socketMode: SlackSocketMode | undefined;
  if (slackHandling && slackHandlers && appToken) {
    socketMode = createSlackSocketMode({
      handlers: slackHandlers,
      logger: slackHandling.logger,
      appToken,
      slackApiUrl: config.slack.apiUrl,
    });
    try {
      await socketMode.start();
    } catch (err) {
      // A token Slack refuses is a setting to fix, not a failure to retry.
      throw new ConfigError([`SLACK_APP_TOKEN (value hidden): ${(err as Error).message}`]);
    }
  }
  const rest = gateway
    ? createRestRouter({
        environments: gateway,
        tokens: config.apiTokens,
        logger: logger.child({ system: 'api' }),
        metrics,
        supportSizes: Object.keys(config.support.sizes),
        supportTaskQueue: taskQueue,
        supportPodTtlMs: config.support.ttlMinutes * 60_000,
        commandWaitMs: config.commandWaitMs,
        uiPublic: config.uiPublic,
        savingsPrices: config.savings.prices,
      })
    : undefined;
  // The page only reads the REST API, so it is served where the REST API is.
  const ui = rest ? createUiRouter() : undefined;
  const app = createApi({ client, logger, metrics, routers: [rest, ui, slack].filter((r) => r !== undefined) });
  const api = await listenApi(app, { port: config.apiPort, closeTimeoutMs: httpCloseTimeoutMs(config) }).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        throw new ConfigError([`API_PORT=${config.apiPort}: in use by another process; set API_PORT to a free port`]);
      throw err;
    },
  );
  const apiPort = api.port;
  home?.start();

  const { tlsCert, tlsKey } = config.webhook;
  let admission: AdmissionWebhook | undefined;
  let webhook: WebhookServer | undefined;
  if (servesUsers && tlsCert && tlsKey) {
    admission = createAdmissionWebhook({
      enrolment: createConfiguredEnrolment(config, client),
      // Every review is a hint: the namespace is read back, with the API's read-only identity, before anything is changed.
      readNamespace: createNamespaceReader(kubeConfig),
      logger: logger.child({ system: 'admission' }),
      metrics,
      dryRun: config.dryRun,
    });
    webhook = await startWebhookServer({
      certFile: tlsCert,
      keyFile: tlsKey,
      port: config.webhook.port,
      router: admission.router,
      logger,
      metrics,
      clientAuthentication: config.webhook.clientAuthentication,
    });
  }

  const probed = localCluster ? await probeCluster(localCluster.kubeConfig) : await cluster;
  if (!probed?.reachable)
    logger.warn(
      {
        kubeconfig: kubeSource ?? 'none',
        ...(localClusterProblem ? { localCluster: localClusterProblem } : {}),
        ...(probed ? { server: probed.server, reason: probed.reason } : {}),
      },
      'no Kubernetes cluster reachable: nothing to enrol until there is one',
    );
  logger.info(
    {
      role: config.role,
      temporal: address,
      temporalNamespace: namespace,
      temporalSecurity: security,
      ...(config.temporal.profileSource ? { temporalProfile: config.temporal.profileSource } : {}),
      ...(clusterName ? { cluster: clusterName } : {}),
      ...(devServer?.uiUrl ? { temporalWebUi: devServer.uiUrl } : {}),
      ...(kubeSource || localCluster ? { kubernetesContext: kubeConfig.getCurrentContext() } : {}),
      ...(localCluster ? { localCluster: localCluster.kubeConfigPath } : {}),
      dryRun: config.dryRun,
      taskQueue,
      api: `http://127.0.0.1:${apiPort}`,
      schedules,
      slackCommands: [slack ? 'http' : undefined, socketMode ? 'socket-mode' : undefined].filter(Boolean),
      slackNotifications: Boolean(config.slack.botToken),
      webhook: webhook ? `${webhook.url}/admission/namespaces` : 'off',
    },
    'devenv-scheduler ready',
  );
  // A plain summary for people running `npm start` in a terminal.
  console.log(
    [
      '',
      `  Temporal      ${address} (namespace ${namespace}${clusterName ? `, cluster ${clusterName}: ids ${clusterName}/...` : ''}), ${security}${!devServer && config.temporal.profileSource ? `; ${config.temporal.profileSource}` : ''}`,
      ...(devServer?.uiUrl ? [`  Temporal UI   ${devServer.uiUrl}`] : []),
      `  Kubernetes    ${localCluster ? localClusterLine(localCluster, probed) : kubernetesLine(kubeSource, kubeConfig, probed, config, localClusterProblem)}`,
      ...(localCluster?.demo ? [`  Demo          ${demoLine(localCluster)}`] : []),
      `  Dry run       ${
        config.dryRun
          ? 'on (DRY_RUN=true): nothing in Kubernetes or AWS is changed; stops, starts, the reconciler and the webhook log what they would do'
          : 'off: stops, starts and enrolment change the cluster (DRY_RUN=true only logs them)'
      }`,
      `  Worker        ${runsWorker ? `task queue ${taskQueue}` : 'not in this process (SERVICE_ROLE=api)'}`,
      ...(runsWorker ? [`  AWS           ${config.aws.regions.length ? config.aws.regions.join(', ') : 'off (set AWS_REGIONS)'}`] : []),
      `  API           http://127.0.0.1:${apiPort}  (/healthz, /readyz, /metrics)`,
      ...(servesUsers
        ? [
            `  REST API      http://127.0.0.1:${apiPort}/api/v1  (docs: http://127.0.0.1:${apiPort}/docs, page: http://127.0.0.1:${apiPort}/ui)${
              config.apiTokens.length ? '' : ', refusing every request until API_TOKENS is set'
            }`,
          ]
        : []),
      ...(servesUsers
        ? [
            `  Slack         ${slackCommandsLine(slack !== undefined, socketMode !== undefined, apiPort)}; ${
              config.slack.botToken
                ? `warnings to Slack (default channel ${config.slack.defaultChannel})`
                : 'warnings to the log (set SLACK_BOT_TOKEN)'
            }`,
            `  Webhook       ${
              webhook
                ? `${webhook.url}/admission/namespaces, ${
                    config.webhook.clientAuthentication
                      ? "callers: the apiserver's client certificate only"
                      : 'callers: anyone who reaches the port (set WEBHOOK_CLIENT_CA)'
                  }`
                : 'off (set WEBHOOK_TLS_CERT and WEBHOOK_TLS_KEY)'
            }`,
          ]
        : []),
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stopped = new Promise<void>((resolve) => {
    const shutdown = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      // Requests in flight (a Slack command, a REST stop) are answered while Temporal is still connected.
      home?.stop();
      await Promise.all([api.close(), webhook?.close(), socketMode?.stop()]);
      await admission?.drain(ADMISSION_DRAIN_MS);
      driftWatch?.stop();
      if (worker) {
        // Activities in flight (a stop halfway through a namespace) finish here, up to the grace; then they are cancelled and retried elsewhere.
        logger.info({ graceSeconds: config.worker.shutdownGraceMs / 1000 }, 'worker stopping');
        worker.shutdown();
      }
      await workerRun;
      await connection.close();
      await devServer?.stop();
      await localCluster?.stop();
      logger.info('stopped');
      resolve();
    };
    let firstSignalAt = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (!stopping) {
        firstSignalAt = Date.now();
        void shutdown(signal);
        return;
      }
      // `npm start` passes a terminal's Ctrl-C on to this process, which had it from the terminal already: only a
      // later one is someone who will not wait. The local control plane's processes go with it (the exit hook).
      if (Date.now() - firstSignalAt < REPEATED_SIGNAL_MS) return;
      logger.warn({ signal }, 'stopping at once, without waiting for what is in flight');
      process.exit(130);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // The terminal closed: a local control plane started here must not outlive it.
    process.on('SIGHUP', onSignal);
  });
  try {
    await Promise.race([stopped, workerRun ?? stopped]);
    await stopped;
  } finally {
    if (!stopping) {
      home?.stop();
      driftWatch?.stop();
      await socketMode?.stop();
      await api.close();
      await webhook?.close();
      await devServer?.stop();
      await localCluster?.stop();
    }
  }
}

/** One policy for Slack and REST: requesters are Slack user ids or `api:<token name>`, so one list of admins holds both. */
function supportPolicy(config: Config): SupportPolicy {
  return {
    maxPodsPerUser: config.support.maxPodsPerUser,
    maxSize: config.support.maxSize,
    sizes: config.support.sizes,
    admins: [...config.slack.supportAdmins, ...config.apiSupportAdmins.map((name) => `api:${name}`)],
  };
}

/** Who may stop and prolongate an environment with owners; user groups are read with the bot token (without one, a group names no one). */
function ownersPolicy(config: Config, logger: Logger): OwnersPolicy {
  const { botToken, apiUrl, ownersOnly, admins } = config.slack;
  return {
    controlByOwnersOnly: ownersOnly === 'control',
    admins,
    ...(botToken
      ? { membersOf: createGroupMembers({ token: botToken, slackApiUrl: apiUrl, logger: logger.child({ system: 'slack' }) }) }
      : {}),
  };
}

/** Where the kubeconfig comes from, as client-node looks for it; undefined: nowhere, and it would talk to localhost:8080. */
function kubeConfigSource(): string | undefined {
  if (process.env.KUBECONFIG) return `KUBECONFIG=${process.env.KUBECONFIG}`;
  const home = path.join(os.homedir(), '.kube', 'config');
  if (existsSync(home)) return home;
  if (process.env.KUBERNETES_SERVICE_HOST) return 'in-cluster';
  return undefined;
}

/** The banner's word on the cluster: which one, or that there is none and how to point at one. */
function kubernetesLine(
  source: string | undefined,
  kubeConfig: KubeConfig,
  probed: ClusterProbe | undefined,
  config: Config,
  localClusterProblem: string | undefined,
): string {
  if (!source) {
    const pointAtOne = "set KUBECONFIG to a cluster's kubeconfig (kind, minikube, k3d or your own)";
    if (localClusterProblem)
      return `no cluster: no kubeconfig (KUBECONFIG unset, no ~/.kube/config), and no local control plane: ${localClusterProblem}; or ${pointAtOne}, and start again`;
    return `no cluster: no kubeconfig (KUBECONFIG unset, no ~/.kube/config); ${pointAtOne}, or LOCAL_CLUSTER=auto for a local control plane with sample environments${config.localCluster.mode === 'off' ? ' (LOCAL_CLUSTER=off now)' : ''}, and start again`;
  }
  if (!probed?.reachable) {
    return `no cluster reachable at ${probed?.server} (${probed?.reason}, context ${kubeConfig.getCurrentContext()} from ${source}); start it, or set KUBECONFIG to another (kubectl config get-contexts), and start again`;
  }
  return `${probed.server} (context ${kubeConfig.getCurrentContext()}, ${probed.version})`;
}

/** The local control plane: where its kubeconfig is, and whose it is. */
function localClusterLine(local: LocalCluster, probed: ClusterProbe | undefined): string {
  const where = `${probed?.reachable ? `${probed.server} (context ${local.kubeConfig.getCurrentContext()}, ${probed.version})` : local.server}`;
  const whose = local.owner
    ? `the local control plane of another npm start (pid ${local.owner}), joined: left running when this process stops`
    : 'local control plane (no kubeconfig found; LOCAL_CLUSTER=off runs without one), stopped with this process';
  return `${where}, ${whose}; KUBECONFIG=${local.kubeConfigPath}`;
}

/** What to look at first, on the sample environments. */
function demoLine(local: LocalCluster): string {
  const { namespaces, soon } = local.demo!;
  return `${namespaces.join(', ')} (labelled scheduler=enabled, so enrolled); ${soon.namespace} stops at ${soon.shutdownTime} UTC, its warnings first: \`npx devenv status ${soon.namespace}\`, \`KUBECONFIG=${local.kubeConfigPath} kubectl get deploy -A\``;
}

/** Where commands come in: over HTTP (signed requests), over Socket Mode (a connection the service opened), or both. */
function slackCommandsLine(http: boolean, socketMode: boolean, apiPort: number): string {
  const ways = [
    ...(http ? [`at http://127.0.0.1:${apiPort}/slack/commands`] : []),
    ...(socketMode ? ['over Socket Mode (connected)'] : []),
  ];
  return ways.length
    ? `commands ${ways.join(' and ')}`
    : 'commands off (set SLACK_APP_TOKEN for Socket Mode, or SLACK_SIGNING_SECRET for HTTP)';
}

/** The same handlers for both transports. */
function slackOptions(
  config: Config,
  environments: EnvironmentsClient,
  logger: Logger,
  metrics: Metrics,
  kubeConfig: KubeConfig,
): SlackHandlerOptions {
  const awsStatus = createAwsStatusReader(configuredAwsSettings(config, logger));
  const namespaceStatus = createNamespaceStatusReader(kubeConfig);
  const slackLogger = logger.child({ system: 'slack' });
  return {
    environments,
    responder: createResponder({ logger: slackLogger, origins: config.slack.responseUrlOrigins }),
    metrics,
    logger: slackLogger,
    allow: config.slack.allow,
    supportSizes: Object.keys(config.support.sizes),
    supportTaskQueue: config.temporal.taskQueue,
    supportPodTtlMs: config.support.ttlMinutes * 60_000,
    savingsPrices: config.savings.prices,
    // Read-only: the status tables come straight from the cluster and from AWS.
    workloadsOf: async (ns) => (await namespaceStatus(ns)).workloads.filter((w) => !w.excluded),
    ...(config.aws.regions.length ? { awsOf: async (ns: string) => (await awsStatus(ns)).resources } : {}),
  };
}

/**
 * The savings gauge lists every environment with its ledger (a memo of up to a few KiB
 * each): scrapes every few seconds reuse one listing for this long, as a week's figures
 * barely move in it.
 */
const SAVINGS_METRICS_MAX_AGE_MS = 5 * 60_000;

/** `read`, asked again only once its last answer is `maxAgeMs` old; a failure is not kept. */
function cachedFor<T>(maxAgeMs: number, read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!last || Date.now() - last.at > maxAgeMs) {
      const value = read();
      const entry = { at: Date.now(), value };
      last = entry;
      value.catch(() => {
        if (last === entry) last = undefined;
      });
    }
    return last.value;
  };
}

const logger = createLogger();
let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
main(config, createLogger(config.logLevel)).catch(async (err: unknown) => {
  await Promise.allSettled(cleanUpOnFailure.map((clean) => clean()));
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  // Refused or unreachable at start-up: one line that says why, not a stack trace.
  if (err instanceof TemporalConnectError) logger.fatal(`devenv-scheduler cannot start: ${err.message}`);
  else logger.fatal({ err }, 'devenv-scheduler failed');
  process.exit(1);
});
