/**
 * `/devenv` over Slack's Socket Mode: the service opens a WebSocket to Slack with the
 * app-level token (`xapp-...`), so no public endpoint or ingress is needed. Bolt's own
 * SocketModeReceiver (package @slack/socket-mode) speaks the protocol: it asks
 * `apps.connections.open` for a URL, waits for Slack's hello, acknowledges each envelope
 * and reconnects when Slack asks it to or the connection drops. Every slash command and
 * button, and the `app_home_opened` event, goes to the same handlers as over HTTP; a slash command's reply travels in its
 * acknowledgement, as it would in the HTTP response.
 */
import { App, LogLevel, SocketModeReceiver, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from '../../logger';
import type { SlackHandlers } from './handlers';

export interface SocketModeOptions {
  handlers: SlackHandlers;
  logger: Logger;
  /** The app-level token with the `connections:write` scope. Never logged. */
  appToken: string;
  /** The Web API that `apps.connections.open` is called on (SLACK_API_URL); default Slack's. */
  slackApiUrl?: string;
  /**
   * How long a ping to Slack may go unanswered before the connection is dropped and opened
   * again; a reconnect waits this long after a failure (and as much again after each further one).
   * Default: @slack/socket-mode's own.
   */
  clientPingTimeoutMs?: number;
}

export interface SlackSocketMode {
  /** Resolves once Slack has said hello on the first connection; rejects with Slack's reason (`invalid_auth`, ...) when the token is refused or Slack cannot be reached. */
  start(): Promise<void>;
  /** Closes the connection; envelopes arriving later go to another connection of the app, or are redelivered. */
  stop(): Promise<void>;
}

export function createSlackSocketMode(options: SocketModeOptions): SlackSocketMode {
  const { handlers } = options;
  const logger = boltLogger(options.logger);
  const receiver = new SocketModeReceiver({
    appToken: options.appToken,
    logger,
    clientPingTimeout: options.clientPingTimeoutMs,
    installerOptions: { clientOptions: options.slackApiUrl ? { slackApiUrl: options.slackApiUrl } : {} },
  });
  const app = new App({
    receiver,
    logger,
    // The listeners below never call the Web API through Bolt (warnings go through the notifier activity, the App Home through home.ts), so no bot token is asked for here.
    authorize: async () => ({}),
    ignoreSelf: false,
    convoStore: false,
  });

  app.command(/.*/, async ({ command, ack }) => {
    const { reply } = await handlers.command(command as unknown as Record<string, unknown>);
    await ack(reply);
  });
  app.action(/.*/, async ({ body, ack }) => {
    await ack();
    const taken = handlers.interaction(body);
    if (taken.status !== 200) options.logger.warn({ error: taken.error }, 'Slack interaction refused');
  });

  // Bolt acknowledges an event before its listeners run.
  app.event('app_home_opened', async ({ event }) => {
    const taken = handlers.event(event);
    if (taken.status !== 200) options.logger.warn({ error: taken.error }, 'Slack event refused');
  });

  // What an operator wants to see of the connection; the client itself logs only trouble.
  receiver.client.on('connected', () => options.logger.info('Slack Socket Mode connected'));
  receiver.client.on('reconnecting', () => options.logger.info('Slack Socket Mode reconnecting'));

  return {
    start: async () => {
      try {
        await app.start();
      } catch (err) {
        // The Web API's own word for a refused token; the error itself would carry the request, headers and all.
        const reason = (err as { data?: { error?: unknown } }).data?.error;
        throw new Error(`Slack Socket Mode could not connect: ${typeof reason === 'string' ? reason : (err as Error).message}`, {
          cause: err,
        });
      }
    },
    stop: async () => {
      await app.stop();
    },
  };
}

/**
 * Bolt's logger interface on the service's logger. Debug lines are dropped: the Socket Mode
 * client writes whole envelopes there, response_url included, which is a credential for the channel.
 */
function boltLogger(logger: Logger): BoltLogger {
  const child = logger.child({ system: 'slack-socket-mode' });
  let level = LogLevel.INFO;
  return {
    debug: () => undefined,
    info: (...msg) => child.info(msg.map(String).join(' ')),
    warn: (...msg) => child.warn(msg.map(String).join(' ')),
    error: (...msg) => child.error(msg.map(String).join(' ')),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}
