/**
 * `npm start`: the whole service in one process. Without TEMPORAL_ADDRESS it first starts
 * a local Temporal dev server (the embedded default); with it, it joins that cluster.
 * Then it registers what Temporal needs, runs the worker and serves the API.
 */
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { createActivities } from './activities';
import { createApi } from './api/server';
import { createMetrics } from './api/metrics';
import { createSlackRouter } from './api/slack';
import { DEFAULT_SUPPORT_SIZES } from './activities/kubernetes';
import { ConfigError, loadConfig, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { startDevServer, type DevServer } from './temporal/dev-server';
import { awsInventorySchedule, ensureMorningResetSchedule, ensureSchedule, registerSearchAttributes } from './temporal/setup';
import { createWorker } from './worker';

async function main(config: Config, logger: Logger): Promise<void> {
  Runtime.install({ telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } } });

  let devServer: DevServer | undefined;
  let address = config.temporal.address;
  if (!address) {
    logger.info('TEMPORAL_ADDRESS not set: starting a local Temporal dev server');
    devServer = await startDevServer({
      port: config.temporal.devServerPort,
      uiPort: config.temporal.uiPort,
      dbFile: config.temporal.devDbFile,
      namespace: config.temporal.namespace,
    });
    address = devServer.address;
  }
  const { namespace, taskQueue } = config.temporal;

  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  if (!devServer) await registerSearchAttributes(connection, namespace);
  const schedule = await ensureMorningResetSchedule(client, {
    resetTime: config.resetTime,
    timeZone: config.policy.timeZone,
    workingDays: config.policy.workingDays,
    taskQueue,
  });

  const inventorySchedule = config.aws.regions.length
    ? await ensureSchedule(client, awsInventorySchedule({ intervalMinutes: config.aws.inventoryIntervalMinutes, taskQueue }))
    : 'off (AWS_REGIONS unset)';

  const activities = await createActivities(config, logger, client);
  const worker = await createWorker({
    connection: await NativeConnection.connect({ address }),
    namespace,
    taskQueue,
    activities,
  });
  const workerRun = worker.run();

  const slack = config.slack.signingSecret
    ? createSlackRouter({
        client,
        signingSecret: config.slack.signingSecret,
        logger: logger.child({ system: 'slack' }),
        allow: config.slack.allow,
        supportSizes: Object.keys(config.support.sizes ?? DEFAULT_SUPPORT_SIZES),
        supportTaskQueue: taskQueue,
        supportPodTtlMs: config.support.ttlMinutes * 60_000,
        workloadsOf: async (ns) => (await activities.namespaceStatus(ns)).workloads.filter((w) => !w.excluded),
      })
    : undefined;
  const app = createApi({ client, logger, metrics: createMetrics(), routers: slack ? [slack] : [] });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(config.apiPort, () => resolve(listening));
  });
  const apiAddress = server.address();
  const apiPort = typeof apiAddress === 'object' && apiAddress ? apiAddress.port : config.apiPort;

  logger.info(
    {
      temporal: address,
      temporalNamespace: namespace,
      ...(devServer ? { temporalWebUi: devServer.uiUrl } : {}),
      taskQueue,
      api: `http://127.0.0.1:${apiPort}`,
      morningResetSchedule: schedule,
      awsInventorySchedule: inventorySchedule,
      slackCommands: Boolean(slack),
      slackNotifications: Boolean(config.slack.botToken),
    },
    'devenv-scheduler ready',
  );
  // A plain summary for people running `npm start` in a terminal.
  console.log(
    [
      '',
      `  Temporal      ${address} (namespace ${namespace})${devServer ? ', local dev server' : ''}`,
      ...(devServer ? [`  Temporal UI   ${devServer.uiUrl}`] : []),
      `  Worker        task queue ${taskQueue}`,
      `  AWS           ${config.aws.regions.length ? config.aws.regions.join(', ') : 'off (set AWS_REGIONS)'}`,
      `  API           http://127.0.0.1:${apiPort}  (/healthz, /readyz, /metrics)`,
      `  Slack         ${slack ? `commands at http://127.0.0.1:${apiPort}/slack/commands` : 'commands off (set SLACK_SIGNING_SECRET)'}; ${
        config.slack.botToken ? `warnings to Slack (default channel ${config.slack.defaultChannel})` : 'warnings to the log (set SLACK_BOT_TOKEN)'
      }`,
      '',
    ].join('\n'),
  );

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close();
    worker.shutdown();
    await workerRun;
    await connection.close();
    await devServer?.stop();
    logger.info('stopped');
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  try {
    await workerRun;
  } finally {
    if (!stopping) {
      server.close();
      await devServer?.stop();
    }
  }
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
main(config, createLogger(config.logLevel)).catch((err: unknown) => {
  logger.fatal({ err }, 'devenv-scheduler failed');
  process.exit(1);
});
