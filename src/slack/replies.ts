/**
 * What the service says back to Slack: every reply to `/devenv` and to a button, rendered
 * from plain data (a status, a listing, a refusal) with the builders of blocks.ts, so the
 * words and layout can be read and tested apart from how a command is run or delivered.
 */
import type { AwsResource, SupportPodInCluster } from '../activities/contracts';
import type { EnvironmentSummary, SupportPodList, SupportPodListing } from '../client/environments';
import { helpLines } from '../commands';
import { formatMinutes } from '../domain/duration';
import type { EnvironmentStatus, HistoryEntry, Phase } from '../workflows/environment/definitions';
import type { Why } from '../workflows/environment/story';
import { describeRemaining } from '../domain/time-display';
import { describeFigures, type SavingsReport } from '../domain/savings';
import {
  code,
  codeBlock,
  context,
  escaped,
  joinMd,
  md,
  mention,
  message,
  ownerMentions,
  section,
  sections,
  slackDate,
  withMentions,
  type Mrkdwn,
  type SlackMessage,
} from './blocks';

/** One row of the status table; Kubernetes' namespace status has this shape. */
export interface WorkloadRow {
  kind: string;
  name: string;
  ready: number;
  desired: number;
  /** Scaled up but not yet Ready: what its controller lacks. */
  notReady?: string;
}

export type Reply = SlackMessage & { response_type: 'ephemeral' | 'in_channel' };

export const ephemeral = (message: SlackMessage): Reply => ({ response_type: 'ephemeral', ...message });
export const inChannel = (message: SlackMessage): Reply => ({ response_type: 'in_channel', ...message });
export const plain = (text: Mrkdwn, ...more: Mrkdwn[]): SlackMessage =>
  message(text, [section(text), ...(more.length ? [context(...more)] : [])]);

export const PHASE_ICON: Record<Phase, string> = {
  running: ':large_green_circle:',
  starting: ':hourglass_flowing_sand:',
  stopping: ':hourglass_flowing_sand:',
  stopped: ':black_circle:',
  disabled: ':double_vertical_bar:',
};

/**
 * One line of `support list`: name, size, the pod's phase and readiness as the cluster has
 * them, who started it, and its fate: when its workflow deletes it, or, for a pod no
 * workflow manages, that it is orphaned and when the kubelet kills it.
 */
export function supportPodLine(listing: SupportPodListing): Mrkdwn {
  const { name, status, pod, expiresAt } = listing;
  const size = listing.size ? md` ${listing.size}` : md``;
  const by = listing.requestedBy ? md` · by ${mention(listing.requestedBy)}` : md` · started by someone unrecorded`;
  const phase = (p: SupportPodInCluster) =>
    md`${p.phase}${p.phase === 'Running' ? (p.ready ? ', ready' : ', not ready') : ''}${p.reason ? ` (${p.reason})` : ''}`;
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

export function unknownNamespace(namespace: string): SlackMessage {
  return plain(
    md`:grey_question: There is no environment *${namespace}*: no namespace of that name is enrolled with the scheduler.`,
    md`${code('/devenv list')} shows the environments there are.`,
  );
}

/** `error` quotes what the user typed: escaped like everything else, in the fallback text as in the blocks. */
export function usageMessage(error: string, usage: string[]): SlackMessage {
  return message(md`${error}. Usage: ${usage.join(' | ')}`, [
    section(md`:grey_question: ${error}.`),
    section(md`*Usage*\n${codeBlock(usage.join('\n'))}`),
    context(md`${code('/devenv help')} lists every command.`),
  ]);
}

export function helpMessage(): SlackMessage {
  const lines = helpLines();
  return message(escaped(lines.join('\n')), [section(md`*${code('/devenv')} commands*`), section(codeBlock(lines.join('\n')))]);
}

export function statusMessage(
  state: EnvironmentStatus,
  workloads: WorkloadRow[] | 'unavailable' | undefined,
  aws?: AwsResource[] | 'unavailable',
): SlackMessage {
  const head = md`${PHASE_ICON[state.phase]} *${state.namespace}* is *${state.phase}*`;
  const shutdown = state.shutdownDescription
    ? md`Next shutdown: ${state.shutdownDescription}${state.prolongedMinutes ? ` (prolonged ${formatMinutes(state.prolongedMinutes)})` : ''}`
    : state.enabled
      ? md`No shutdown scheduled: it is not running.`
      : md`Scheduler disabled for this namespace: it stays up until someone stops it.`;
  // Older workflows answer `status` without it.
  const wake = state.wakeDescription ? md`\nNext wake-up: ${state.wakeDescription}` : md``;
  const owners = state.policy.owners?.length ? md`\nOwners: ${ownerMentions(state.policy.owners)}` : md``;
  const last = state.lastAction;
  const lastLine = last
    ? md`Last: ${last.action} by ${mention(last.by)} ${slackDate(last.at)}${last.detail ? md` (${withMentions(last.detail, [last.by])})` : ''}`
    : md`Last: nothing yet`;
  const blocks = [section(md`${head}\n${shutdown}${wake}${owners}`)];
  if (workloads === 'unavailable') blocks.push(context(md`Workloads could not be read from Kubernetes just now.`));
  else if (workloads) blocks.push(section(workloadTable(workloads)));
  if (aws === 'unavailable') blocks.push(context(md`AWS resources could not be read just now.`));
  else if (aws?.length) blocks.push(section(awsTable(aws)));
  const problems = (state.problems ?? []).map((p) => p.detail);
  if (problems.length) blocks.push(section(md`:warning: ${joinMd(problems, '\n:warning: ')}`));
  blocks.push(context(lastLine));
  const next = state.shutdownDescription ? md` Next shutdown ${state.shutdownDescription}.` : md``;
  const nextWake = state.wakeDescription ? md` Next wake-up ${state.wakeDescription}.` : md``;
  const trouble = problems.length ? md` ${joinMd(problems, '. ')}.` : md``;
  return message(md`${state.namespace} is ${state.phase}.${next}${nextWake}${trouble}`, blocks);
}

/** Entries `history` shows in Slack: the newest, which fit a message. */
export const SLACK_HISTORY_ENTRIES = 20;

/** `history`: the newest entries first, each with who, when and what. */
export function historyMessage(namespace: string, entries: readonly HistoryEntry[]): SlackMessage {
  if (entries.length === 0) return plain(md`Nothing is recorded for *${namespace}* yet.`);
  const shown = entries.slice(-SLACK_HISTORY_ENTRIES).reverse();
  const lines = shown.map(
    (e) => md`• ${slackDate(e.at)} · *${e.action}* by ${mention(e.by)}${e.detail ? md` · ${withMentions(e.detail, [e.by])}` : ''}`,
  );
  const head = md`*${namespace}*: the last ${shown.length} of ${entries.length} recorded, newest first`;
  return message(md`${namespace}: the last ${shown.length} of ${entries.length} recorded`, [
    section(head),
    ...sections(lines).slice(0, 40),
  ]);
}

/** Environments `savings` lists one by one; the total counts them all. */
export const SLACK_SAVINGS_ENVIRONMENTS = 30;

/** `savings`: the total, then each environment, most saved first. */
export function savingsMessage(report: SavingsReport, namespace?: string): SlackMessage {
  const period = report.period === 'week' ? 'the last 7 days' : 'the last 30 days';
  if (namespace !== undefined) {
    const figures = report.environments[0] ?? report.total;
    const line = describeFigures(figures, report.currency);
    return message(md`${namespace} saved in ${period}: ${line}`, [section(md`:moneybag: *${namespace}* saved in ${period}: ${line}`)]);
  }
  const ranked = [...report.environments].sort((a, b) => b.cpuCoreHours - a.cpuCoreHours || a.namespace.localeCompare(b.namespace));
  const shown = ranked.slice(0, SLACK_SAVINGS_ENVIRONMENTS);
  const total = describeFigures(report.total, report.currency);
  const lines = shown.map((e) => md`• *${e.namespace}*: ${describeFigures(e, report.currency)}`);
  const more = ranked.length > shown.length ? [context(md`and ${ranked.length - shown.length} more`)] : [];
  return message(md`${report.environments.length} environments saved in ${period}: ${total}`, [
    section(md`:moneybag: *${report.environments.length} environments* saved in ${period}: ${total}`),
    ...sections(lines).slice(0, 40),
    ...more,
  ]);
}

/** The weekly summary of one environment, for its channel: what `/devenv savings <namespace>` answers, said to be the week's. */
export function weeklySavingsMessage(report: SavingsReport, namespace: string): SlackMessage {
  const answer = savingsMessage({ ...report, environments: report.environments.filter((e) => e.namespace === namespace) }, namespace);
  return {
    text: answer.text,
    blocks: [...answer.blocks, context(md`Weekly summary · ${code(`/devenv savings ${namespace} month`)} for the month`)],
  };
}

/** The weekly summary of them all, for the default channel: what `/devenv savings` answers, of the environments that saved something. */
export function weeklySavingsTotalMessage(report: SavingsReport): SlackMessage {
  const answer = savingsMessage({ ...report, environments: report.environments.filter(savedSomething) });
  return { text: answer.text, blocks: [...answer.blocks, context(md`Weekly summary · ${code('/devenv savings month')} for the month`)] };
}

/** An environment that slept none of the week saved nothing, and its channel hears nothing of it. */
export const savedSomething = (figures: { hoursAsleep: number }): boolean => figures.hoursAsleep > 0;

/** What the weekly summary posts: each environment that saved something to its own channel, and the total. */
export function weeklySavingsMessages(report: SavingsReport): {
  environments: { namespace: string; message: SlackMessage }[];
  total: SlackMessage | null;
} {
  const saved = report.environments.filter(savedSomething);
  return {
    environments: saved.map((e) => ({ namespace: e.namespace, message: weeklySavingsMessage(report, e.namespace) })),
    total: saved.length > 0 ? weeklySavingsTotalMessage(report) : null,
  };
}

/** `why`: the sentence, its recorded `by` values as mentions. */
export function whyMessage(namespace: string, why: Why): SlackMessage {
  const sentence = withMentions(why.sentence, why.mentions);
  return message(md`${namespace}: ${sentence}`, [section(md`*${namespace}*: ${sentence}`)]);
}

/** EC2 and RDS resources tagged for the namespace, with AWS's own word for their state. */
function awsTable(resources: AwsResource[]): Mrkdwn {
  const cells = [
    ['AWS', 'STATE'],
    ...resources.map((r) => [
      `${r.kind}/${r.name ?? r.id}`,
      `${r.state}${r.scheduler === 'enabled' ? '' : ' (not scheduled)'}${r.unsupported ? ` (cannot stop: ${r.unsupported})` : ''}`,
    ]),
  ];
  const width = Math.max(...cells.map(([name]) => name!.length));
  return codeBlock(cells.map(([name, state]) => `${name!.padEnd(width)}  ${state}`).join('\n'));
}

/** A fixed-width table in a code block: the most compact thing Slack renders. */
function workloadTable(rows: WorkloadRow[]): Mrkdwn {
  if (rows.length === 0) return md`_No Deployments, StatefulSets or Rollouts._`;
  const cells = [
    ['WORKLOAD', 'READY'],
    ...rows.map((w) => [`${w.kind}/${w.name}`, `${w.ready}/${w.desired}${w.notReady ? `  not Ready: ${w.notReady}` : ''}`]),
  ];
  const width = Math.max(...cells.map(([name]) => name!.length));
  const text = cells.map(([name, ready]) => `${name!.padEnd(width)}  ${ready}`).join('\n');
  return codeBlock(text.length > 2800 ? `${text.slice(0, 2800)}\n…` : text);
}

/** `list`: one line per environment, its phase and when it next shuts down; those in `own` (the reader's) first, marked. */
export function environmentListMessage(
  environments: readonly EnvironmentSummary[],
  now: Date,
  own: ReadonlySet<string> = new Set(),
): SlackMessage {
  const ordered = [...environments.filter((e) => own.has(e.namespace)), ...environments.filter((e) => !own.has(e.namespace))];
  const rows = ordered.map(({ namespace, phase, nextShutdown }) => {
    const when = nextShutdown
      ? md`shuts down ${slackDate(nextShutdown)}, in ${describeRemaining(now, new Date(nextShutdown))}`
      : md`no scheduled shutdown`;
    return md`${PHASE_ICON[phase] ?? ''} *${namespace}*  ${phase} · ${when}${own.has(namespace) ? ' · yours' : ''}`;
  });
  if (rows.length === 0) return plain(md`No environments are enrolled yet.`);
  const text = md`${rows.length} environment${rows.length === 1 ? '' : 's'}`;
  // Slack allows 50 blocks a message; 45 sections hold well over a thousand environments.
  return message(text, [section(md`*${text}*`), ...sections(rows).slice(0, 45)]);
}

/** `support list`: one line per name, and a warning when the cluster could not be read. */
export function supportPodListMessage({ supportPods, podsUnavailable }: SupportPodList): SlackMessage {
  const lines = supportPods.map(supportPodLine);
  const unread = podsUnavailable
    ? [context(md`:warning: The pods could not be read from Kubernetes (${podsUnavailable}): only the workflows are listed.`)]
    : [];
  if (lines.length === 0) return message(md`No support pods right now.`, [section(md`No support pods right now.`), ...unread]);
  return message(md`${lines.length} support pod${lines.length === 1 ? '' : 's'}`, [...sections(lines).slice(0, 44), ...unread]);
}
