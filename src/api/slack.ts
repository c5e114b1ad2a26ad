/**
 * `/devenv`: Slack's slash commands and button clicks, handled the same whichever way they
 * arrive: over HTTP, mounted on the koa app, or over Socket Mode (socket-mode.ts).
 *
 * Slack gives up on a request after 3 seconds, so nothing here waits on a workload:
 * quick commands answer in the HTTP response (or the Socket Mode acknowledgement) when
 * Temporal replies within the budget, and through `response_url` when it does not; start
 * and stop are acknowledged at once and their result is posted to `response_url` when the
 * workflow Update completes. Bolt has no koa receiver, so over HTTP the request signature
 * is checked with Bolt's own helper.
 */
import Router from '@koa/router';
import { verifySlackRequest } from '@slack/bolt';
import type { Client } from '@temporalio/client';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { familyOf, formatCommand, helpLines, parseCommand, type Command, type CommandFamily } from '../commands';
import { formatMinutes } from '../duration';
import { createEnvironmentsClient, OperationError, type SupportPodListing, type SupportPolicy } from '../client/environments';
import type { AwsResource, SupportPodInCluster } from '../activities/contracts';
import type { Logger } from '../logger';
import type { Metrics } from './metrics';
import {
  BUTTON_PROLONGATION_MINUTES,
  PROLONGATE_ACTION_ID,
  STOP_ACTION_ID,
  code,
  codeBlock,
  context,
  decodeButtonValue,
  escaped,
  formatDuration,
  joinMd,
  md,
  mention,
  message,
  section,
  sections,
  slackDate,
  withMentions,
  type Mrkdwn,
  type SlackMessage,
} from '../slack/blocks';
import type { ActionResult, EnvironmentStatus, Phase } from '../workflows/environment';
import { describeRemaining } from '../workflows/shutdown-policy';
import { supportPodStateQuery, supportPodWorkflowId } from '../workflows/support-pod';

/** Either list narrows who may use a family of commands; with both set, both must allow. */
export interface SlackAllowList {
  users?: readonly string[];
  channels?: readonly string[];
}

export type SlackAllowLists = Partial<Record<CommandFamily, SlackAllowList>>;

/** One row of the status table; Kubernetes' namespace status has this shape. */
export interface WorkloadRow {
  kind: string;
  name: string;
  ready: number;
  desired: number;
}

export interface SlackHandlerOptions {
  client: Client;
  logger: Logger;
  /** CLUSTER_NAME: the environments and support pods of this cluster alone. */
  cluster?: string;
  allow?: SlackAllowLists;
  supportSizes?: readonly string[];
  /** Live workloads for `status`; without it the reply shows the workflow's view only. */
  workloadsOf?: (namespace: string) => Promise<WorkloadRow[]>;
  /** The namespace's tagged EC2/RDS resources and their states, for `status`; without it, none are shown. */
  awsOf?: (namespace: string) => Promise<AwsResource[]>;
  /** How long a quick command may wait for Temporal before it is answered via `response_url` instead. */
  replyBudgetMs?: number;
  /** The worker's task queue, where `support start` runs a support-pod workflow; without it support commands say they are unavailable. */
  supportTaskQueue?: string;
  /** How long a support pod lives unless stopped sooner (default: the workflow's 8h). */
  supportPodTtlMs?: number;
  /** Counts commands by kind and outcome (`devenv_commands_total{source="slack"}`). */
  metrics?: Metrics;
  /** Who may have which support pods (SUPPORT_MAX_PODS_PER_USER, SUPPORT_MAX_SIZE, SLACK_SUPPORT_ADMINS); without it, no limits. */
  supportPolicy?: SupportPolicy;
  /** The support namespace's pods, read from the cluster, for `support list` and the name check of `support start`; without it the list shows the workflows alone. */
  supportPods?: () => Promise<SupportPodInCluster[]>;
  /**
   * The only origins a `response_url` may have (SLACK_RESPONSE_URL_ORIGINS): a request with
   * any other is refused before anything is done, and nothing is ever posted elsewhere.
   * Default: Slack's own, `https://hooks.slack.com`; tests add their local recorder.
   */
  responseUrlOrigins?: readonly string[];
}

export interface SlackRouterOptions extends SlackHandlerOptions {
  signingSecret: string;
}

/** What the service makes of one request from Slack, whichever transport brought it. */
export interface SlackHandlers {
  /** A slash command's fields (`user_id`, `channel_id`, `text`, `response_url`): the reply, with status 400 when it is refused as malformed. */
  command(fields: Record<string, unknown>): Promise<{ status: 200 | 400; reply: Reply }>;
  /** An interaction payload (a button click), taken in hand at once: its result is posted to its response_url; status 400 with the reason when malformed. */
  interaction(payload: unknown): { status: 200 } | { status: 400; error: string };
}

export const DEFAULT_RESPONSE_URL_ORIGINS: readonly string[] = ['https://hooks.slack.com'];

declare const CHECKED: unique symbol;
/** A response_url that `checkResponseUrl` has let through: the only kind anything is posted to. */
type ResponseUrl = string & { readonly [CHECKED]: true };

/**
 * The one place that decides whether a response_url may be posted to: a URL whose origin
 * (scheme, host and port) is one of `origins`, with no user or password in it. Slack's are
 * `https://hooks.slack.com/commands/...` and `https://hooks.slack.com/actions/...`.
 */
export function checkResponseUrl(raw: string, origins: readonly string[]): { ok: true; url: ResponseUrl } | { ok: false; problem: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, problem: 'response_url is not a URL' };
  }
  if (!origins.includes(url.origin) || url.username || url.password) {
    return { ok: false, problem: `response_url is not on ${origins.join(' or ')}: only Slack's own response URLs are answered` };
  }
  return { ok: true, url: url.href as ResponseUrl };
}

export type Reply = SlackMessage & { response_type: 'ephemeral' | 'in_channel' };

/** Who asked, where, and where late answers go. */
interface Requester {
  user: string;
  channel: string | undefined;
  responseUrl: ResponseUrl;
}

/** Slack's replay window; Bolt's helper checks only the past side, so both sides are checked here too. */
const MAX_CLOCK_SKEW_SECONDS = 5 * 60;
const DEFAULT_REPLY_BUDGET_MS = 2000;
const RESPONSE_URL_ATTEMPTS = 3;
/** How long `support start` follows a new pod before it stops reporting on it. */
const SUPPORT_POD_FOLLOW_MS = 60_000;

const ephemeral = (message: SlackMessage): Reply => ({ response_type: 'ephemeral', ...message });
const inChannel = (message: SlackMessage): Reply => ({ response_type: 'in_channel', ...message });
const plain = (text: Mrkdwn, ...more: Mrkdwn[]): SlackMessage => message(text, [section(text), ...(more.length ? [context(...more)] : [])]);

const PHASE_ICON: Record<Phase, string> = {
  running: ':large_green_circle:',
  starting: ':hourglass_flowing_sand:',
  stopping: ':hourglass_flowing_sand:',
  stopped: ':black_circle:',
  disabled: ':double_vertical_bar:',
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * One line of `support list`: name, size, the pod's phase and readiness as the cluster has
 * them, who started it, and its fate: when its workflow deletes it, or, for a pod no
 * workflow manages, that it is orphaned and when the kubelet kills it.
 */
export function supportPodLine(listing: SupportPodListing): Mrkdwn {
  const { name, status, pod, expiresAt } = listing;
  const size = listing.size ? md` ${listing.size}` : md``;
  const by = listing.requestedBy ? md` · by ${mention(listing.requestedBy)}` : md` · started by someone unrecorded`;
  const phase = (p: SupportPodInCluster) => md`${p.phase}${p.phase === 'Running' ? (p.ready ? ', ready' : ', not ready') : ''}${p.reason ? ` (${p.reason})` : ''}`;
  const deleted = expiresAt ? md` · deleted ${slackDate(expiresAt)}` : md``;
  switch (status) {
    case 'managed':
      return md`• *${name}*${size} · ${phase(pod!)}${by}${deleted}`;
    case 'creating':
      return md`• *${name}*${size} · being created${by}${deleted}`;
    case 'waiting':
      return pod?.deletingSince
        ? md`• *${name}*${size} · waiting for the previous pod of this name to finish terminating${by}${deleted}`
        : md`• *${name}*${size} · :warning: the name is held by a pod that is not its own (${pod?.createdBy ? mention(pod.createdBy) : 'started by someone unrecorded'}): this start fails${by}`;
    case 'pod-missing':
      return md`• *${name}*${size} · :warning: pod missing (deleted outside the scheduler)${by} · the workflow ends ${expiresAt ? slackDate(expiresAt) : 'at its expiry'}`;
    case 'deleting':
      return md`• *${name}*${size} · being deleted (${phase(pod!)})${by}`;
    case 'orphaned': {
      const fate =
        pod!.phase === 'Failed' && pod!.reason === 'DeadlineExceeded'
          ? md`killed by its deadline; it holds the name until deleted with kubectl`
          : pod!.deadlineAt
            ? md`the kubelet kills it ${slackDate(pod!.deadlineAt)}`
            : md`no deadline: delete it with kubectl`;
      return md`• *${name}*${size} · ${phase(pod!)}${by} · :warning: orphaned: no workflow manages it; ${fate}`;
    }
    case 'unknown':
      return md`• *${name}*${size} · pod not looked up${by}${deleted}`;
  }
}

/** `/slack/commands` and `/slack/interactions`: requests signed by Slack, handed to the same handlers as Socket Mode's. */
export function createSlackRouter(options: SlackRouterOptions): Router {
  const { signingSecret, logger } = options;
  if (!signingSecret) throw new Error('createSlackRouter: the Slack signing secret is empty');
  const handlers = createSlackHandlers(options);
  const router = new Router();

  /** The raw body when the request is signed by Slack within the replay window; otherwise answers 401 and returns undefined. */
  async function verifiedBody(ctx: Context): Promise<string | undefined> {
    let body: string;
    try {
      body = await getRawBody(ctx.req, { length: ctx.get('content-length') || undefined, limit: '100kb', encoding: 'utf8' });
    } catch (err) {
      ctx.status = (err as { status?: number }).status ?? 400;
      ctx.body = { error: 'unreadable body' };
      return undefined;
    }
    const signature = ctx.get('x-slack-signature');
    const timestamp = ctx.get('x-slack-request-timestamp');
    let problem: string | undefined;
    if (!signature || !timestamp) problem = 'missing signature headers';
    else if (!/^\d{1,12}$/.test(timestamp)) problem = 'malformed timestamp';
    else if (Math.abs(Date.now() / 1000 - Number(timestamp)) > MAX_CLOCK_SKEW_SECONDS) problem = 'timestamp outside the 5-minute window';
    else {
      try {
        verifySlackRequest({ signingSecret, body, headers: { 'x-slack-signature': signature, 'x-slack-request-timestamp': Number(timestamp) } });
      } catch {
        problem = 'signature mismatch';
      }
    }
    if (problem) {
      logger.warn({ path: ctx.path, ip: ctx.ip, reason: problem }, 'Slack request refused: not signed by Slack');
      ctx.status = 401;
      ctx.body = { error: 'invalid Slack request signature' };
      return undefined;
    }
    return body;
  }

  router.post('/slack/commands', async (ctx) => {
    const body = await verifiedBody(ctx);
    if (body === undefined) return;
    const { status, reply } = await handlers.command(Object.fromEntries(new URLSearchParams(body)));
    ctx.status = status;
    ctx.body = reply;
  });

  router.post('/slack/interactions', async (ctx) => {
    const body = await verifiedBody(ctx);
    if (body === undefined) return;
    let payload: unknown;
    try {
      payload = JSON.parse(new URLSearchParams(body).get('payload') ?? '');
    } catch {
      payload = undefined;
    }
    const taken = handlers.interaction(payload);
    // Slack wants an empty 200 at once; anything a user should see goes to response_url.
    ctx.status = taken.status;
    ctx.body = taken.status === 200 ? '' : { error: taken.error };
  });

  return router;
}

export function createSlackHandlers(options: SlackHandlerOptions): SlackHandlers {
  const { client, logger } = options;
  const replyBudgetMs = options.replyBudgetMs ?? DEFAULT_REPLY_BUDGET_MS;
  const environments = createEnvironmentsClient(client, { support: options.supportPolicy, supportPods: options.supportPods, cluster: options.cluster });
  const responseUrlOrigins = options.responseUrlOrigins ?? DEFAULT_RESPONSE_URL_ORIGINS;

  /** The requester of a signed request, or why its response_url is refused (logged with its origin only: the URL is a credential). */
  function requester(user: string, channel: string | undefined, rawResponseUrl: string): Requester | string {
    const checked = checkResponseUrl(rawResponseUrl, responseUrlOrigins);
    if (checked.ok) return { user, channel, responseUrl: checked.url };
    let origin: string | undefined;
    try {
      origin = new URL(rawResponseUrl).origin;
    } catch {
      origin = undefined;
    }
    logger.warn({ user, channel, origin, allowed: responseUrlOrigins }, 'Slack request refused: response_url not on an allowed origin');
    return `${checked.problem}. Nothing was done.`;
  }


  function refusal(family: CommandFamily, who: Requester, what: string): Mrkdwn | undefined {
    const list = options.allow?.[family];
    if (!list) return undefined;
    const userOk = !list.users || list.users.includes(who.user);
    const channelOk = !list.channels || (who.channel !== undefined && list.channels.includes(who.channel));
    if (userOk && channelOk) return undefined;
    logger.warn({ user: who.user, channel: who.channel, family, command: what }, 'Slack command refused by allow-list');
    return userOk
      ? md`:no_entry: ${code(what)} cannot be used in this channel. Ask an admin to add it to the ${family} allow-list, or use an allowed channel.`
      : md`:no_entry: You are not allowed to use ${code(what)}. Ask an admin to add ${mention(who.user)} to the ${family} allow-list.`;
  }

  /** Posts a late answer; retried briefly because the user has no other way to learn the result. */
  async function postToResponseUrl(url: ResponseUrl, reply: Reply): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let problem: string;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          // Late answers are new messages: a warning and its buttons stay where they are.
          body: JSON.stringify({ ...reply, replace_original: false }),
          signal: AbortSignal.timeout(5000),
        });
        if (response.ok) return;
        problem = `HTTP ${response.status}`;
        // Slack answers 404 once a response_url has expired (30 minutes, 5 uses): retrying cannot help.
        if (response.status < 500 && response.status !== 429) attempt = RESPONSE_URL_ATTEMPTS;
      } catch (err) {
        problem = String(err);
      }
      if (attempt >= RESPONSE_URL_ATTEMPTS) {
        // The URL itself is a credential for the channel: log the text, not where it was going.
        logger.error({ problem, text: reply.text }, 'could not post a result to Slack');
        return;
      }
      await sleep(500 * 2 ** attempt);
    }
  }

  function later(url: ResponseUrl, work: Promise<Reply>): void {
    void work.then((reply) => postToResponseUrl(url, reply));
  }

  /** The reply for any failure of a Temporal call; `doing` is such as "stop *dev1*". */
  function failureReply(err: unknown, doing: Mrkdwn, namespace?: string): Reply {
    if (err instanceof OperationError) {
      switch (err.kind) {
        case 'unknown-environment':
          if (namespace) return ephemeral(unknownNamespace(namespace));
          break;
        case 'retired':
          return ephemeral(plain(md`:warning: *${namespace ?? ''}* is no longer managed (its namespace was deleted, or it left management).`));
        case 'rejected':
          // The validator's or the handler's own words; a rejected Update changed nothing.
          return ephemeral(plain(md`:warning: Could not ${doing}: ${withMentions(err.message, err.mentions)}`));
        case 'forbidden':
        case 'limit':
          return ephemeral(plain(md`:no_entry: Could not ${doing}: ${withMentions(err.message, err.mentions)}.`));
      }
    }
    logger.error({ err: String(err), namespace, doing: doing.source }, 'Slack command failed');
    return ephemeral(plain(md`:x: Could not ${doing}: the scheduler had an internal error (logged). Try again in a minute.`));
  }

  /** Answers in the HTTP response if `work` finishes within the budget, else acknowledges and posts the answer later. */
  async function withinBudget(who: Requester, ack: Mrkdwn, work: Promise<Reply>): Promise<Reply> {
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), replyBudgetMs);
    });
    const reply = await Promise.race([work, budget]);
    clearTimeout(timer);
    if (reply) return reply;
    later(who.responseUrl, work);
    return ephemeral(plain(md`:hourglass_flowing_sand: ${ack}`));
  }

  async function status(namespace: string): Promise<Reply> {
    const [state, workloads, aws] = await Promise.all([
      environments.status(namespace),
      options.workloadsOf?.(namespace).catch((err: unknown) => {
        logger.warn({ err: String(err), namespace }, 'workloads unavailable for status');
        return 'unavailable' as const;
      }),
      options.awsOf?.(namespace).catch((err: unknown) => {
        logger.warn({ err: String(err), namespace }, 'AWS resources unavailable for status');
        return 'unavailable' as const;
      }),
    ]);
    return ephemeral(statusMessage(state, workloads, aws));
  }

  async function list(): Promise<Reply> {
    const now = new Date();
    const rows = (await environments.list()).map(({ namespace, phase, nextShutdown }) => {
      const when = nextShutdown ? md`shuts down ${slackDate(nextShutdown)}, in ${describeRemaining(now, new Date(nextShutdown))}` : md`no scheduled shutdown`;
      return md`${PHASE_ICON[phase] ?? ''} *${namespace}*  ${phase} · ${when}`;
    });
    if (rows.length === 0) return ephemeral(plain(md`No environments are enrolled yet.`));
    const text = md`${rows.length} environment${rows.length === 1 ? '' : 's'}`;
    // Slack allows 50 blocks a message; 45 sections hold well over a thousand environments.
    return ephemeral(message(text, [section(md`*${text}*`), ...sections(rows).slice(0, 45)]));
  }

  async function prolongate(who: Requester, namespace: string, minutes: number): Promise<Reply> {
    try {
      const result = await environments.prolongate(namespace, minutes, who.user);
      return inChannel(plain(md`:clock3: ${withMentions(result.message, [who.user])}`));
    } catch (err) {
      return failureReply(err, md`prolongate *${namespace}* by ${formatMinutes(minutes)}`, namespace);
    }
  }

  /** Start or stop: the Update may take minutes, so its result always arrives via `response_url`. */
  async function startOrStop(who: Requester, action: 'start' | 'stop', namespace: string): Promise<Reply> {
    try {
      // Answered by the server alone, so an unknown namespace is told at once even when no worker runs.
      await environments.ensureManaged(namespace);
    } catch (err) {
      return failureReply(err, md`${action} *${namespace}*`, namespace);
    }
    const began = Date.now();
    later(
      who.responseUrl,
      environments[action](namespace, who.user).then(
        (result: ActionResult) =>
          inChannel(
            plain(
              md`${action === 'start' ? ':arrow_forward:' : ':black_square_for_stop:'} ${withMentions(result.message, [who.user])}`,
              md`took ${formatDuration(Date.now() - began)}`,
            ),
          ),
        (err: unknown) => failureReply(err, md`${action} *${namespace}*`, namespace),
      ),
    );
    const doing = action === 'start' ? 'Starting' : 'Stopping';
    return ephemeral(plain(md`:hourglass_flowing_sand: ${doing} *${namespace}*… the result will be posted here when it is done.`));
  }

  /** Starts the support-pod workflow, then reports the pod (or why it failed) once it exists. */
  async function supportStart(who: Requester, taskQueue: string, name: string, size: string): Promise<Reply> {
    let waitsFor: SupportPodInCluster | null;
    try {
      // The per-person limit is the new workflow's answer: waited for as long as a quick answer may take.
      ({ waitsFor } = await environments.startSupportPod({ name, size, by: who.user, taskQueue, ttlMs: options.supportPodTtlMs, limitWaitMs: replyBudgetMs }));
    } catch (err) {
      if (err instanceof OperationError && err.kind === 'conflict') {
        return ephemeral(plain(md`:warning: Could not start support pod *${name}*: ${withMentions(err.message, err.mentions)}.`, md`${code('/devenv support list')} shows what holds the name`));
      }
      return failureReply(err, md`start support pod *${name}*`);
    }
    later(who.responseUrl, supportPodOutcome(who, name, size));
    if (waitsFor) {
      return ephemeral(
        plain(
          md`:hourglass_flowing_sand: Support pod *${name}* (${size}) is created once the previous pod of that name has finished terminating (deleted ${slackDate(waitsFor.deletingSince ?? '')})… the result will be posted here.`,
        ),
      );
    }
    return ephemeral(plain(md`:hourglass_flowing_sand: Creating support pod *${name}* (${size})… the result will be posted here.`));
  }

  async function supportPodOutcome(who: Requester, name: string, size: string): Promise<Reply> {
    const handle = client.workflow.getHandle(supportPodWorkflowId(name, options.cluster));
    const deadline = Date.now() + SUPPORT_POD_FOLLOW_MS;
    try {
      while (Date.now() < deadline) {
        const { status } = await handle.describe();
        if (status.name !== 'RUNNING') {
          await handle.result(); // throws the failure, e.g. an unknown size or a missing namespace
          return ephemeral(plain(md`Support pod *${name}* is already gone again.`));
        }
        const state = await handle.query(supportPodStateQuery);
        if (state.pod) {
          const expires = state.expiresAt ? md`; deleted ${slackDate(state.expiresAt)} unless stopped earlier` : md``;
          return inChannel(
            plain(md`:toolbox: Support pod *${name}* (${state.pod.size}) created for ${mention(who.user)}: ${state.pod.phase}${expires}.`, md`${code(`/devenv support stop ${name}`)} deletes it`),
          );
        }
        await sleep(500);
      }
      return ephemeral(plain(md`:hourglass_flowing_sand: Support pod *${name}* (${size}) is still being created; ${code('/devenv support list')} shows when it is there.`));
    } catch (err) {
      const reason = rootCause(err);
      logger.warn({ name, size, error: reason }, 'support pod not created');
      return ephemeral(plain(md`:x: Support pod *${name}* could not be created: ${reason}`));
    }
  }

  async function supportStop(who: Requester, name: string): Promise<Reply> {
    try {
      await environments.stopSupportPod(name, who.user);
    } catch (err) {
      if (err instanceof OperationError && err.kind === 'unknown-support-pod') {
        const what = err.message === `there is no support pod ${name}` ? md`There is no support pod *${name}*.` : md`${err.message}.`;
        return ephemeral(plain(md`:grey_question: ${what}`, md`${code('/devenv support list')} shows those there are.`));
      }
      if (err instanceof OperationError && err.kind === 'conflict') {
        return ephemeral(plain(md`:warning: Could not stop support pod *${name}*: ${withMentions(err.message, err.mentions)}.`));
      }
      return failureReply(err, md`stop support pod *${name}*`);
    }
    return inChannel(plain(md`:wastebasket: Support pod *${name}* is being deleted, asked by ${mention(who.user)}.`));
  }

  async function supportList(): Promise<Reply> {
    const { supportPods, podsUnavailable } = await environments.listSupportPods();
    const lines = supportPods.map(supportPodLine);
    const unread = podsUnavailable ? [context(md`:warning: The pods could not be read from Kubernetes (${podsUnavailable}): only the workflows are listed.`)] : [];
    if (lines.length === 0) return ephemeral(message(md`No support pods right now.`, [section(md`No support pods right now.`), ...unread]));
    return ephemeral(message(md`${lines.length} support pod${lines.length === 1 ? '' : 's'}`, [...sections(lines).slice(0, 44), ...unread]));
  }

  async function execute(command: Command, who: Requester): Promise<Reply> {
    switch (command.name) {
      case 'help':
        return ephemeral(helpMessage());
      case 'list':
        return withinBudget(who, md`Listing environments… the list will follow here.`, list().catch((err: unknown) => failureReply(err, md`list the environments`)));
      case 'status':
        return withinBudget(
          who,
          md`Asking *${command.namespace}*… its status will follow here.`,
          status(command.namespace).catch((err: unknown) => failureReply(err, md`get the status of *${command.namespace}*`, command.namespace)),
        );
      case 'prolongate':
        return withinBudget(who, md`Prolongating *${command.namespace}*… the result will follow here.`, prolongate(who, command.namespace, command.minutes));
      case 'start':
      case 'stop':
        return withinBudget(who, md`Working on *${command.namespace}*… the result will follow here.`, startOrStop(who, command.name, command.namespace));
      case 'support start':
      case 'support stop':
      case 'support list': {
        const taskQueue = options.supportTaskQueue;
        if (!taskQueue) return ephemeral(plain(md`:construction: Support pods are not available on this scheduler.`));
        if (command.name === 'support list') {
          return withinBudget(who, md`Listing support pods… the list will follow here.`, supportList().catch((err: unknown) => failureReply(err, md`list the support pods`)));
        }
        const work = command.name === 'support start' ? supportStart(who, taskQueue, command.supportName, command.size) : supportStop(who, command.supportName);
        return withinBudget(who, md`Working on support pod *${command.supportName}*… the result will follow here.`, work);
      }
    }
  }

  async function command(fields: Record<string, unknown>): Promise<{ status: 200 | 400; reply: Reply }> {
    const field = (name: string) => (typeof fields[name] === 'string' ? (fields[name] as string) : undefined);
    const user = field('user_id');
    const responseUrl = field('response_url');
    const text = field('text');
    if (!user || !responseUrl || text === undefined) {
      return { status: 400, reply: ephemeral(plain(md`Malformed slash command: user_id, text and response_url are required.`)) };
    }
    const who = requester(user, field('channel_id') || undefined, responseUrl);
    if (typeof who === 'string') return { status: 400, reply: ephemeral(plain(md`Malformed slash command: ${who}`)) };
    const parsed = parseCommand(text, { supportSizes: options.supportSizes });
    if (!parsed.ok) {
      options.metrics?.commands.inc({ source: 'slack', command: parsed.nearest ?? 'unknown', outcome: 'invalid' });
      return { status: 200, reply: ephemeral(usageMessage(parsed.error, parsed.usage)) };
    }
    const what = formatCommand(parsed.command);
    const refused = refusal(familyOf(parsed.command), who, what);
    options.metrics?.commands.inc({ source: 'slack', command: parsed.command.name, outcome: refused ? 'refused' : 'accepted' });
    if (refused) return { status: 200, reply: ephemeral(plain(refused)) };
    logger.info({ user, channel: who.channel, command: what }, 'Slack command');
    return { status: 200, reply: await execute(parsed.command, who) };
  }

  function interaction(payload: unknown): { status: 200 } | { status: 400; error: string } {
    const click = parseButtonClick(payload, requester);
    if (typeof click === 'string' || !click) return { status: 400, error: `malformed interaction payload${click ? `: ${click}` : ''}` };
    if (click.kind === 'ignored') {
      logger.info({ actionId: click.actionId }, 'Slack interaction ignored: not ours');
      return { status: 200 };
    }
    const { who, namespace } = click;
    const command: Command = click.kind === 'stop' ? { name: 'stop', namespace } : { name: 'prolongate', namespace, minutes: click.minutes };
    const what = formatCommand(command);
    const refused = refusal(familyOf(command), who, what);
    if (refused) {
      later(who.responseUrl, Promise.resolve(ephemeral(plain(refused))));
      return { status: 200 };
    }
    logger.info({ user: who.user, channel: who.channel, command: what }, 'Slack button');
    later(who.responseUrl, command.name === 'stop' ? startOrStop(who, 'stop', namespace) : prolongate(who, namespace, command.minutes));
    return { status: 200 };
  }

  return { command, interaction };
}

type ButtonClick =
  | { kind: 'stop'; who: Requester; namespace: string }
  | { kind: 'prolongate'; who: Requester; namespace: string; minutes: number }
  | { kind: 'ignored'; actionId: string };

/** Parses a block_actions payload strictly: a valid signature or an authenticated socket says who sent it, not that it is well-formed. A string: its response_url is refused. */
function parseButtonClick(payload: unknown, requester: (user: string, channel: string | undefined, responseUrl: string) => Requester | string): ButtonClick | string | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const { type, user, channel, response_url: responseUrl, actions } = payload as Record<string, unknown>;
  const userId = (user as { id?: unknown } | undefined)?.id;
  const channelId = (channel as { id?: unknown } | undefined)?.id;
  const action = Array.isArray(actions) ? (actions[0] as { action_id?: unknown; value?: unknown } | undefined) : undefined;
  if (type !== 'block_actions' || typeof userId !== 'string' || typeof responseUrl !== 'string' || typeof action?.action_id !== 'string') {
    return undefined;
  }
  if (action.action_id !== PROLONGATE_ACTION_ID && action.action_id !== STOP_ACTION_ID) return { kind: 'ignored', actionId: action.action_id };
  const value = decodeButtonValue(action.value);
  if (!value) return undefined;
  const who = requester(userId, typeof channelId === 'string' ? channelId : undefined, responseUrl);
  if (typeof who === 'string') return who;
  return action.action_id === STOP_ACTION_ID
    ? { kind: 'stop', who, namespace: value.namespace }
    : { kind: 'prolongate', who, namespace: value.namespace, minutes: value.minutes ?? BUTTON_PROLONGATION_MINUTES };
}

/** Workflow failures wrap activity failures wrap the application's own words: show those. */
function rootCause(err: unknown): string {
  let current = err as { message?: string; cause?: unknown };
  while (current.cause) current = current.cause as { message?: string; cause?: unknown };
  return current.message ?? String(err);
}

function unknownNamespace(namespace: string): SlackMessage {
  return plain(
    md`:grey_question: There is no environment *${namespace}*: no namespace of that name is enrolled with the scheduler.`,
    md`${code('/devenv list')} shows the environments there are.`,
  );
}

/** `error` quotes what the user typed: escaped like everything else, in the fallback text as in the blocks. */
function usageMessage(error: string, usage: string[]): SlackMessage {
  return message(md`${error}. Usage: ${usage.join(' | ')}`, [
    section(md`:grey_question: ${error}.`),
    section(md`*Usage*\n${codeBlock(usage.join('\n'))}`),
    context(md`${code('/devenv help')} lists every command.`),
  ]);
}

function helpMessage(): SlackMessage {
  const lines = helpLines();
  return message(escaped(lines.join('\n')), [section(md`*${code('/devenv')} commands*`), section(codeBlock(lines.join('\n')))]);
}

function statusMessage(state: EnvironmentStatus, workloads: WorkloadRow[] | 'unavailable' | undefined, aws?: AwsResource[] | 'unavailable'): SlackMessage {
  const head = md`${PHASE_ICON[state.phase]} *${state.namespace}* is *${state.phase}*`;
  const shutdown = state.shutdownDescription
    ? md`Next shutdown: ${state.shutdownDescription}${state.prolongedMinutes ? ` (prolonged ${formatMinutes(state.prolongedMinutes)})` : ''}`
    : state.enabled
      ? md`No shutdown scheduled: it is not running.`
      : md`Scheduler disabled for this namespace: it stays up until someone stops it.`;
  const last = state.lastAction;
  const lastLine = last
    ? md`Last: ${last.action} by ${mention(last.by)} ${slackDate(last.at)}${last.detail ? md` (${withMentions(last.detail, [last.by])})` : ''}`
    : md`Last: nothing yet`;
  const blocks = [section(md`${head}\n${shutdown}`)];
  if (workloads === 'unavailable') blocks.push(context(md`Workloads could not be read from Kubernetes just now.`));
  else if (workloads) blocks.push(section(workloadTable(workloads)));
  if (aws === 'unavailable') blocks.push(context(md`AWS resources could not be read just now.`));
  else if (aws?.length) blocks.push(section(awsTable(aws)));
  const problems = (state.problems ?? []).map((p) => p.detail);
  if (problems.length) blocks.push(section(md`:warning: ${joinMd(problems, '\n:warning: ')}`));
  blocks.push(context(lastLine));
  const next = state.shutdownDescription ? md` Next shutdown ${state.shutdownDescription}.` : md``;
  const trouble = problems.length ? md` ${joinMd(problems, '. ')}.` : md``;
  return message(md`${state.namespace} is ${state.phase}.${next}${trouble}`, blocks);
}

/** EC2 and RDS resources tagged for the namespace, with AWS's own word for their state. */
function awsTable(resources: AwsResource[]): Mrkdwn {
  const cells = [
    ['AWS', 'STATE'],
    ...resources.map((r) => [`${r.kind}/${r.name ?? r.id}`, `${r.state}${r.scheduler === 'enabled' ? '' : ' (not scheduled)'}${r.unsupported ? ` (cannot stop: ${r.unsupported})` : ''}`]),
  ];
  const width = Math.max(...cells.map(([name]) => name!.length));
  return codeBlock(cells.map(([name, state]) => `${name!.padEnd(width)}  ${state}`).join('\n'));
}

/** A fixed-width table in a code block: the most compact thing Slack renders. */
function workloadTable(rows: WorkloadRow[]): Mrkdwn {
  if (rows.length === 0) return md`_No Deployments or StatefulSets._`;
  const cells = [['WORKLOAD', 'READY'], ...rows.map((w) => [`${w.kind}/${w.name}`, `${w.ready}/${w.desired}`])];
  const width = Math.max(...cells.map(([name]) => name!.length));
  const text = cells.map(([name, ready]) => `${name!.padEnd(width)}  ${ready}`).join('\n');
  return codeBlock(text.length > 2800 ? `${text.slice(0, 2800)}\n…` : text);
}
