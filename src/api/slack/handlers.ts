/**
 * `/devenv`: Slack's slash commands and button clicks, handled the same whichever way they
 * arrive: over HTTP (router.ts) or over Socket Mode (socket-mode.ts). Each is parsed by the
 * command table, checked against the allow-lists, run through the gateway it is given, and
 * answered with a reply rendered by src/slack/replies.ts.
 *
 * Slack gives up on a request after 3 seconds, so nothing here waits on a workload: quick
 * commands answer in the HTTP response (or the Socket Mode acknowledgement) when Temporal
 * replies within the budget, and through `response_url` when it does not; start and stop are
 * acknowledged at once and their result is posted to `response_url` (responder.ts) when the
 * workflow Update completes.
 */
import { familyOf, formatCommand, parseCommand, type Command, type CommandFamily } from '../../commands';
import { formatMinutes } from '../../domain/duration';
import { savingsReport, type Prices } from '../../domain/savings';
import { NotOwnerError, OperationError, type EnvironmentsClient } from '../../client/environments';
import type { AwsResource, SupportPodInCluster } from '../../activities/contracts';
import type { Logger } from '../../logger';
import type { Metrics } from '../metrics';
import {
  BUTTON_PROLONGATION_MINUTES,
  PROLONGATE_ACTION_ID,
  STOP_ACTION_ID,
  code,
  decodeButtonValue,
  formatDuration,
  md,
  mention,
  ownerMentions,
  slackDate,
  withMentions,
  type Mrkdwn,
} from '../../slack/blocks';
import {
  environmentListMessage,
  ephemeral,
  helpMessage,
  inChannel,
  plain,
  statusMessage,
  historyMessage,
  savingsMessage,
  whyMessage,
  supportPodListMessage,
  unknownNamespace,
  usageMessage,
  type Reply,
  type WorkloadRow,
} from '../../slack/replies';
import type { ActionResult } from '../../workflows/environment/definitions';
import type { Responder, ResponseUrl } from './responder';

/** Either list narrows who may use a family of commands; with both set, both must allow. */
export interface SlackAllowList {
  users?: readonly string[];
  channels?: readonly string[];
}

export type SlackAllowLists = Partial<Record<CommandFamily, SlackAllowList>>;

export interface SlackHandlerOptions {
  /** What commands ask of Temporal and of the support namespace: built once by main.ts, with CLUSTER_NAME, the support limits and the pod reader. */
  environments: EnvironmentsClient;
  /** Where late answers go. */
  responder: Responder;
  logger: Logger;
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
  /** SAVINGS_PRICE_*: what turns `savings` into money. */
  savingsPrices?: Prices;
}

/** What the service makes of one request from Slack, whichever transport brought it. */
export interface SlackHandlers {
  /** A slash command's fields (`user_id`, `channel_id`, `text`, `response_url`): the reply, with status 400 when it is refused as malformed. */
  command(fields: Record<string, unknown>): Promise<{ status: 200 | 400; reply: Reply }>;
  /** An interaction payload (a button click), taken in hand at once: its result is posted to its response_url; status 400 with the reason when malformed. */
  interaction(payload: unknown): { status: 200 } | { status: 400; error: string };
}

/** Who asked, where, and where late answers go. */
interface Requester {
  user: string;
  channel: string | undefined;
  responseUrl: ResponseUrl;
}

const DEFAULT_REPLY_BUDGET_MS = 2000;
/** How long `support start` follows a new pod before it stops reporting on it. */
const SUPPORT_POD_FOLLOW_MS = 60_000;

export function createSlackHandlers(options: SlackHandlerOptions): SlackHandlers {
  const { environments, responder, logger } = options;
  const replyBudgetMs = options.replyBudgetMs ?? DEFAULT_REPLY_BUDGET_MS;
  const later = (url: ResponseUrl, work: Promise<Reply>): void => responder.later(url, work);

  /** The requester of a signed request, or why its response_url is refused. */
  function requester(user: string, channel: string | undefined, rawResponseUrl: string): Requester | string {
    const checked = responder.check(rawResponseUrl, { user, channel });
    return checked.ok ? { user, channel, responseUrl: checked.url } : `${checked.problem}. Nothing was done.`;
  }

  /** Why the allow-list of the command's family refuses the requester here; undefined when it does not. */
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

  /** The reply for any failure of a Temporal call; `doing` is such as "stop *dev1*". */
  function failureReply(err: unknown, doing: Mrkdwn, namespace?: string): Reply {
    if (err instanceof NotOwnerError) {
      logger.warn({ namespace: err.namespace, action: err.action }, 'Slack command refused: not an owner');
      const unread = err.unreadGroups.length
        ? [
            md`The members of ${ownerMentions(err.unreadGroups)} could not be read from Slack (no such group, or the app lacks the ${code('usergroups:read')} scope).`,
          ]
        : [];
      return ephemeral(
        plain(
          md`:no_entry: Only the owners of *${err.namespace}* (${ownerMentions(err.owners)}) may ${err.action} it. Ask one of them, or an admin.`,
          ...unread,
        ),
      );
    }
    if (err instanceof OperationError) {
      switch (err.kind) {
        case 'unknown-environment':
          if (namespace) return ephemeral(unknownNamespace(namespace));
          break;
        case 'retired':
          return ephemeral(
            plain(md`:warning: *${namespace ?? ''}* is no longer managed (its namespace was deleted, or it left management).`),
          );
        case 'namespace-gone':
          return ephemeral(
            plain(md`:warning: Could not ${doing}: ${err.message}.`, md`${code('/devenv list')} shows the environments there are.`),
          );
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

  /** Everyone's environments, the requester's own first. */
  async function list(who: Requester): Promise<Reply> {
    const all = await environments.list();
    const owned = await Promise.all(all.map((e) => environments.owns(who.user, e.policy?.owners ?? [])));
    return ephemeral(environmentListMessage(all, new Date(), new Set(all.filter((_, i) => owned[i]).map((e) => e.namespace))));
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
      // Answered by the server alone, so an unknown namespace, or a stop only the owners may make, is told at once even when no worker runs.
      await environments.ensureAllowed(namespace, action, who.user);
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
      ({ waitsFor } = await environments.startSupportPod({
        name,
        size,
        by: who.user,
        taskQueue,
        ttlMs: options.supportPodTtlMs,
        limitWaitMs: replyBudgetMs,
      }));
    } catch (err) {
      if (err instanceof OperationError && err.kind === 'conflict') {
        return ephemeral(
          plain(
            md`:warning: Could not start support pod *${name}*: ${withMentions(err.message, err.mentions)}.`,
            md`${code('/devenv support list')} shows what holds the name`,
          ),
        );
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
    try {
      const followed = await environments.followSupportPod(name, SUPPORT_POD_FOLLOW_MS);
      switch (followed.outcome) {
        case 'created': {
          const expires = followed.expiresAt ? md`; deleted ${slackDate(followed.expiresAt)} unless stopped earlier` : md``;
          return inChannel(
            plain(
              md`:toolbox: Support pod *${name}* (${followed.pod.size}) created for ${mention(who.user)}: ${followed.pod.phase}${expires}.`,
              md`${code(`/devenv support stop ${name}`)} deletes it`,
            ),
          );
        }
        case 'gone':
          return ephemeral(plain(md`Support pod *${name}* is already gone again.`));
        case 'pending':
          return ephemeral(
            plain(
              md`:hourglass_flowing_sand: Support pod *${name}* (${size}) is still being created; ${code('/devenv support list')} shows when it is there.`,
            ),
          );
      }
    } catch (err) {
      // The gateway words a failed workflow (an unknown size, a missing namespace, ...) in the domain's terms.
      const reason = err instanceof Error ? err.message : String(err);
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
    return ephemeral(supportPodListMessage(await environments.listSupportPods()));
  }

  async function execute(command: Command, who: Requester): Promise<Reply> {
    switch (command.name) {
      case 'help':
        return ephemeral(helpMessage());
      case 'list':
        return withinBudget(
          who,
          md`Listing environments… the list will follow here.`,
          list(who).catch((err: unknown) => failureReply(err, md`list the environments`)),
        );
      case 'status':
        return withinBudget(
          who,
          md`Asking *${command.namespace}*… its status will follow here.`,
          status(command.namespace).catch((err: unknown) =>
            failureReply(err, md`get the status of *${command.namespace}*`, command.namespace),
          ),
        );
      case 'history':
        return withinBudget(
          who,
          md`Reading the history of *${command.namespace}*… it will follow here.`,
          environments
            .history(command.namespace)
            .then(({ entries }) => ephemeral(historyMessage(command.namespace, entries)))
            .catch((err: unknown) => failureReply(err, md`read the history of *${command.namespace}*`, command.namespace)),
        );
      case 'why':
        return withinBudget(
          who,
          md`Asking *${command.namespace}*… the answer will follow here.`,
          environments
            .why(command.namespace)
            .then((why) => ephemeral(whyMessage(command.namespace, why)))
            .catch((err: unknown) => failureReply(err, md`say what happens next to *${command.namespace}*`, command.namespace)),
        );
      case 'savings': {
        const { namespace, period } = command;
        return withinBudget(
          who,
          md`Adding up the savings… they will follow here.`,
          environments
            .ledgers(namespace)
            .then((ledgers) => ephemeral(savingsMessage(savingsReport(ledgers, period, new Date(), options.savingsPrices), namespace)))
            .catch((err: unknown) => failureReply(err, md`add up the savings${namespace ? md` of *${namespace}*` : md``}`, namespace)),
        );
      }
      case 'prolongate':
        return withinBudget(
          who,
          md`Prolongating *${command.namespace}*… the result will follow here.`,
          prolongate(who, command.namespace, command.minutes),
        );
      case 'start':
      case 'stop':
        return withinBudget(
          who,
          md`Working on *${command.namespace}*… the result will follow here.`,
          startOrStop(who, command.name, command.namespace),
        );
      case 'support start':
      case 'support stop':
      case 'support list': {
        const taskQueue = options.supportTaskQueue;
        if (!taskQueue) return ephemeral(plain(md`:construction: Support pods are not available on this scheduler.`));
        if (command.name === 'support list') {
          return withinBudget(
            who,
            md`Listing support pods… the list will follow here.`,
            supportList().catch((err: unknown) => failureReply(err, md`list the support pods`)),
          );
        }
        const work =
          command.name === 'support start'
            ? supportStart(who, taskQueue, command.supportName, command.size)
            : supportStop(who, command.supportName);
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
    const command: Command =
      click.kind === 'stop' ? { name: 'stop', namespace } : { name: 'prolongate', namespace, minutes: click.minutes };
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
function parseButtonClick(
  payload: unknown,
  requester: (user: string, channel: string | undefined, responseUrl: string) => Requester | string,
): ButtonClick | string | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const { type, user, channel, response_url: responseUrl, actions } = payload as Record<string, unknown>;
  const userId = (user as { id?: unknown } | undefined)?.id;
  const channelId = (channel as { id?: unknown } | undefined)?.id;
  const action = Array.isArray(actions) ? (actions[0] as { action_id?: unknown; value?: unknown } | undefined) : undefined;
  if (type !== 'block_actions' || typeof userId !== 'string' || typeof responseUrl !== 'string' || typeof action?.action_id !== 'string') {
    return undefined;
  }
  if (action.action_id !== PROLONGATE_ACTION_ID && action.action_id !== STOP_ACTION_ID)
    return { kind: 'ignored', actionId: action.action_id };
  const value = decodeButtonValue(action.value);
  if (!value) return undefined;
  const who = requester(userId, typeof channelId === 'string' ? channelId : undefined, responseUrl);
  if (typeof who === 'string') return who;
  return action.action_id === STOP_ACTION_ID
    ? { kind: 'stop', who, namespace: value.namespace }
    : { kind: 'prolongate', who, namespace: value.namespace, minutes: value.minutes ?? BUTTON_PROLONGATION_MINUTES };
}
