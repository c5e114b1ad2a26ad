/**
 * `devenv`: the operators' command line. The same commands as `/devenv` in Slack (parsed
 * by the same table), run against Temporal directly, plus two for operators:
 * `devenv schedules ensure` and `devenv reconcile`. Settings come from the same
 * environment variables as the service (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE,
 * TEMPORAL_TLS_*, TEMPORAL_API_KEY, TEMPORAL_PROFILE...).
 *
 * Exit codes: 0 done, 1 failed (Temporal unreachable, internal error), 2 bad command or
 * settings, 3 no such environment or support pod, 4 refused (e.g. prolongating a stopped one),
 * 5 still in progress (start, stop or prolongate not done within COMMAND_WAIT_SECONDS; it goes on).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, WorkflowFailedError } from '@temporalio/client';
import { formatCommand, helpLines, parseCommand, type Command } from './commands';
import { ConfigError, loadConfig, type Config } from './config';
import { describeFigures, savingsReport } from './domain/savings';
import { formatMinutes } from './domain/duration';
import {
  createEnvironmentsClient,
  InProgressError,
  OperationError,
  type EnvironmentsClient,
  type SupportPodList,
} from './client/environments';
import { connectClient } from './temporal/connection';
import { ensureSchedules } from './temporal/setup';
import { reconcileWorkflow } from './workflows';
import { describeInstant, describeShutdown } from './domain/time-display';
import { configuredAwsSettings, loadKubeConfig } from './activities';
import { ensureInventoryTable } from './activities/aws';
import type { ReconcileReport } from './activities/contracts';
import { createSupportPodReader } from './activities/kubernetes/support-pods';
import { createLogger } from './logger';

const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, refused: 4, inProgress: 5 } as const;

const USAGE = [
  'usage: devenv [--json] <command>       (--json: the outcome, or the error, as JSON on stdout)',
  '       devenv --version',
  '',
  ...helpLines('devenv'),
  'devenv schedules ensure              create or update the Temporal Schedules from the settings',
  'devenv reconcile                     enrol, relabel and retire environments to match the cluster now',
  'devenv reconcile --dry-run           say what reconcile would do to each namespace, and why, changing nothing',
  'devenv aws create-table              create the DynamoDB inventory table (INVENTORY_TABLE) if it is missing',
  '',
  "Temporal: TEMPORAL_ADDRESS (default 127.0.0.1:TEMPORAL_DEV_PORT, npm start's dev server), TEMPORAL_NAMESPACE, TASK_QUEUE; TLS, mTLS and API keys as for the",
  'temporal CLI: TEMPORAL_TLS_*, TEMPORAL_API_KEY, or a temporal.toml profile (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE).',
  'start, stop and prolongate wait up to COMMAND_WAIT_SECONDS (default 20), then exit 5 if still in progress.',
].join('\n');

/** A command or option that does not fit; `usage`, the commands that would (none given: all of them). */
class UsageError extends Error {
  constructor(
    message: string,
    readonly usage?: string[],
  ) {
    super(message);
  }
}

/** `--json` is never a word of a command, so it may come anywhere: `devenv list --json` as well as `devenv --json list`. */
const wantsJson = (argv: string[]): boolean => argv.includes('--json');

function version(): string {
  const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

async function run(argv: string[], out: (line: string) => void): Promise<number> {
  const json = wantsJson(argv);
  const words = argv.filter((arg) => arg !== '--json');
  // Other options come before the command, so `prolongate dev1 for -3h` reaches the parser (and its clear refusal) intact.
  const firstWord = words.findIndex((arg) => !arg.startsWith('-'));
  const flags = firstWord === -1 ? words : words.slice(0, firstWord);
  let values: { help?: boolean; version?: boolean; 'dry-run'?: boolean };
  try {
    ({ values } = parseArgs({
      args: flags,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' }, 'dry-run': { type: 'boolean' } },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.version) {
    out(json ? JSON.stringify({ version: version() }) : `devenv ${version()}`);
    return EXIT.ok;
  }
  let text = firstWord === -1 ? '' : words.slice(firstWord).join(' ');
  // `devenv reconcile --dry-run` as well as `devenv --dry-run reconcile`.
  const dryRun = values['dry-run'] === true || text === 'reconcile --dry-run';
  if (text === 'reconcile --dry-run') text = 'reconcile';
  if (dryRun && text !== 'reconcile') throw new UsageError('--dry-run is for `devenv reconcile` only');
  if (values.help || text === '' || text === 'help') {
    out(USAGE);
    return text === '' && !values.help ? EXIT.usage : EXIT.ok;
  }
  // The CLI's settings alone: a service-only one (a Slack token without its channel) is the service's to refuse.
  const config = loadConfig(process.env, { for: 'cli' });
  if (text === 'aws create-table') {
    const result = await ensureInventoryTable(configuredAwsSettings(config, createLogger(config.logLevel)), { create: true });
    const human = {
      disabled: 'AWS is off (AWS_REGIONS unset): no table needed',
      exists: `table ${config.aws.inventoryTable} exists`,
      created: `table ${config.aws.inventoryTable} created`,
    };
    out(json ? JSON.stringify({ table: config.aws.inventoryTable, result }) : human[result]);
    return EXIT.ok;
  }
  const ops = text === 'schedules ensure' || text === 'reconcile';
  // A mistyped command is told at once, without waiting for Temporal.
  const parsed = ops ? undefined : parseCommand(text, { supportSizes: Object.keys(config.support.sizes) });
  if (parsed && !parsed.ok) throw new UsageError(asCli(parsed.error), parsed.usage.map(asCli));

  // No cluster named: the local dev server of `npm start`, in plaintext.
  const address = config.temporal.address ?? `127.0.0.1:${config.temporal.devServerPort}`;
  const connection = await connectClient(address, config.temporal.address ? config.temporal.connection : {}, 5000);
  try {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const print = (human: string, data: unknown) => out(json ? JSON.stringify(data, null, 2) : human);

    if (text === 'schedules ensure') {
      const results = await ensureSchedules(client, config);
      print(
        Object.entries(results)
          .map(([name, result]) => `${name}: ${result}`)
          .join('\n'),
        results,
      );
      return EXIT.ok;
    }
    if (text === 'reconcile') {
      const report = await client.workflow.execute(reconcileWorkflow, {
        workflowId: `devenv-reconcile-cli-${Date.now()}`,
        taskQueue: config.temporal.taskQueue,
        args: [{ dryRun }],
      });
      print(formatReconcileReport(report), report);
      return report.failed.length ? EXIT.failed : EXIT.ok;
    }

    // The support namespace's pods are read with the operator's kubeconfig (KUBECONFIG, ~/.kube/config, in-cluster).
    const supportPods = createSupportPodReader(loadKubeConfig(), config.support.namespace);
    return (
      (await execute(
        parsed!.command,
        createEnvironmentsClient(client, { supportPods, cluster: config.temporal.cluster }),
        config,
        print,
      )) ?? EXIT.ok
    );
  } finally {
    await connection.close();
  }
}

/** The parser speaks Slack's grammar (`/devenv start dev1`); here the command is `devenv start dev1`. */
const asCli = (text: string): string => text.replace(/\/devenv\b/g, 'devenv');

/** An instant as `status` and Slack say it ("tomorrow 00:24 UTC"), in the environment's zone. */
const describeAt = (iso: string, timeZone: string): string => describeInstant(new Date(iso), new Date(), timeZone);

/** Prints the outcome; returns an exit code other than 0 where the outcome needs one. */
async function execute(
  command: Command,
  environments: EnvironmentsClient,
  config: Config,
  print: (human: string, data: unknown) => void,
): Promise<number | void> {
  const by = `cli:${operatorName()}`;
  switch (command.name) {
    case 'help':
      return print(USAGE, helpLines('devenv'));
    case 'list': {
      const all = await environments.list();
      const now = new Date();
      // A stopping environment's shutdown is under way, not ahead.
      const shutdown = (e: (typeof all)[number]) =>
        e.nextShutdown && e.phase !== 'stopping'
          ? `shuts down ${describeShutdown(new Date(e.nextShutdown), now, e.policy?.timeZone ?? config.policy.timeZone)}`
          : '';
      const rows = all.map((e) =>
        `${e.namespace.padEnd(30)} ${e.phase.padEnd(9)} ${e.enabled ? '' : '(scheduler off) '}${shutdown(e)}`.trimEnd(),
      );
      return print(rows.length ? rows.join('\n') : 'no environments are enrolled', all);
    }
    case 'status': {
      const s = await environments.status(command.namespace);
      const last = s.lastAction
        ? `${s.lastAction.action} by ${s.lastAction.by} ${describeAt(s.lastAction.at, s.policy.timeZone)}${s.lastAction.detail ? ` (${s.lastAction.detail})` : ''}`
        : 'none';
      const next =
        s.phase === 'stopping'
          ? 'none (stopping now)'
          : `${s.shutdownDescription ?? 'none'}${s.prolongedMinutes ? ` (prolonged ${formatMinutes(s.prolongedMinutes)})` : ''}`;
      return print(
        [
          `${s.namespace}: ${s.phase}${s.enabled ? '' : ' (scheduler disabled)'}`,
          `next shutdown: ${next}`,
          ...(s.wakeDescription ? [`next wake-up: ${s.wakeDescription}`] : []),
          `last action: ${last}`,
          ...(s.problems ?? []).map((p) => `problem: ${p.detail}`),
        ].join('\n'),
        s,
      );
    }
    case 'history': {
      const { namespace, timeZone: zone, entries } = await environments.history(command.namespace);
      const rows = [...entries]
        .reverse()
        .map((e) => `${describeAt(e.at, zone).padEnd(22)} ${e.action.padEnd(14)} ${e.by}${e.detail ? `: ${e.detail}` : ''}`);
      return print(rows.length ? rows.join('\n') : `nothing is recorded for ${namespace} yet`, { namespace, entries });
    }
    case 'why': {
      const why = await environments.why(command.namespace);
      return print(`${why.namespace}: ${why.sentence}`, { namespace: why.namespace, why: why.sentence });
    }
    case 'savings': {
      const report = savingsReport(await environments.ledgers(command.namespace), command.period, new Date(), config.savings.prices);
      const rows = report.environments.map((e) => `${e.namespace.padEnd(30)} ${describeFigures(e, report.currency)}`);
      const period = command.period === 'week' ? 'the last 7 days' : 'the last 30 days';
      const head = command.namespace
        ? []
        : [`all ${report.environments.length} environments, ${period}: ${describeFigures(report.total, report.currency)}`];
      return print([...head, ...rows].join('\n') || `no environments are enrolled`, report);
    }
    case 'start':
    case 'stop':
    case 'prolongate': {
      const wait = { waitMs: config.commandWaitMs };
      try {
        const result =
          command.name === 'prolongate'
            ? await environments.prolongate(command.namespace, command.minutes, by, wait)
            : await environments[command.name](command.namespace, by, wait);
        return print(result.message, result);
      } catch (err) {
        if (!(err instanceof InProgressError)) throw err;
        // Not a failure: the action goes on in the environment; only this wait for it ended.
        const message = err.message.replace(/its status shows/, `\`devenv status ${err.namespace}\` shows`);
        print(message, { namespace: err.namespace, action: err.action, accepted: err.accepted, inProgress: true, message });
        return EXIT.inProgress;
      }
    }
    case 'support start': {
      const { name, size } = { name: command.supportName, size: command.size };
      const { waitsFor } = await environments.startSupportPod({
        name,
        size,
        by,
        taskQueue: config.temporal.taskQueue,
        ttlMs: config.support.ttlMinutes * 60_000,
      });
      const human = waitsFor
        ? `support pod ${name} (${size}) is created once the previous pod of that name, deleted at ${waitsFor.deletingSince}, has finished terminating`
        : `support pod ${name} (${size}) is being created`;
      return print(human, { name, size, waitsForPrevious: waitsFor !== null });
    }
    case 'support stop':
      await environments.stopSupportPod(command.supportName, by);
      return print(`support pod ${command.supportName} is being deleted`, { name: command.supportName });
    case 'support list': {
      const list = await environments.listSupportPods();
      return print(formatSupportPods(list), list);
    }
  }
  throw new UsageError(`devenv cannot run ${formatCommand(command)}`);
}

/**
 * Who runs the command, for the record of who did what: the login name, or `uid-N` for a
 * uid without a passwd entry (the image runs as uid 10001, which has none, and
 * `os.userInfo()` throws there).
 */
export function operatorName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

/**
 * `devenv support list`: one line per name, from the cluster and the workflows: name, size,
 * the pod's phase and readiness (or what the name is waiting for), who started it, when it
 * is deleted, and a note for anything but a plain managed pod (orphaned, pod missing, ...).
 */
export function formatSupportPods({ supportPods, podsUnavailable }: SupportPodList): string {
  const rows = supportPods.map((p) => {
    const own = p.status === 'managed' || p.status === 'orphaned' || p.status === 'deleting' ? p.pod : null;
    const state = own ? `${own.phase}${own.phase === 'Running' ? (own.ready ? ',ready' : ',not-ready') : ''}` : p.status;
    return [
      p.name.padEnd(30),
      (p.size ?? '?').padEnd(4),
      state.padEnd(16),
      `by ${p.requestedBy ?? '?'}`,
      p.expiresAt ? `deleted at ${p.expiresAt}` : '',
      p.note ? `(${p.note})` : '',
    ]
      .filter(Boolean)
      .join(' ');
  });
  const lines = rows.length ? rows : ['no support pods'];
  return [
    ...lines,
    ...(podsUnavailable ? [`pods could not be read from Kubernetes (${podsUnavailable}): only the workflows are listed`] : []),
  ].join('\n');
}

/**
 * A dry run: each namespace with what would happen and why, changes first. A real run:
 * what was done, and the namespaces left alone grouped by why.
 */
export function formatReconcileReport(report: ReconcileReport): string {
  const order: ReconcileReport['decisions'][number]['action'][] = [
    'enrol',
    'enable',
    'disable',
    'replan',
    'retire',
    'unchanged',
    'leave-alone',
  ];
  const decisions = [...report.decisions].sort(
    (a, b) => order.indexOf(a.action) - order.indexOf(b.action) || a.namespace.localeCompare(b.namespace),
  );
  const counted = `${report.namespaces} namespaces, ${report.environments} environments before`;
  if (report.dryRun) {
    const what = (d: (typeof decisions)[number]) =>
      d.action === 'unchanged'
        ? 'unchanged'
        : d.action === 'leave-alone'
          ? 'leave alone'
          : `would ${d.action}${d.retire ? ` (${d.retire})` : ''}`;
    const width = Math.max(0, ...decisions.map((d) => d.namespace.length));
    return [
      `dry run: nothing was changed. ${counted}`,
      ...decisions.map((d) => `${what(d).padEnd(30)} ${d.namespace.padEnd(width)}  ${d.reason}`),
      ...(report.decisionsOmitted ? [`... and ${report.decisionsOmitted} more, in the worker's log ("reconciler (dry run)")`] : []),
    ].join('\n');
  }
  const line = (label: string, names: string[]) => `${label}: ${names.length ? names.join(', ') : '-'}`;
  const leftAlone = new Map<string, string[]>();
  for (const d of decisions) if (d.action === 'leave-alone') leftAlone.set(d.reason, [...(leftAlone.get(d.reason) ?? []), d.namespace]);
  return [
    counted,
    line('enrolled', report.enrolled),
    line('enabled', report.enabled),
    line('disabled', report.disabled),
    line('replanned', report.replanned),
    line('retired', report.retired),
    ...[...leftAlone].map(([reason, names]) => `left alone (${reason}): ${names.join(', ')}`),
    ...(report.decisionsOmitted ? [`${report.decisionsOmitted} more namespaces unchanged or left alone, not listed`] : []),
    ...report.failed.map((f) => `failed: ${f.namespace}: ${f.error}`),
  ].join('\n');
}

/**
 * The innermost cause's message: a failed workflow says only "Workflow execution failed",
 * its activity "Activity task failed"; what went wrong is at the end of the chain.
 */
function rootCause(err: Error): string {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return (cause as Error).message;
}

/** The exit code for a failure, and what to tell the operator. */
function describeFailure(err: unknown): { code: number; message: string; usage?: string[] } {
  if (err instanceof UsageError) return { code: EXIT.usage, message: err.message, usage: err.usage ?? helpLines('devenv') };
  if (err instanceof ConfigError) return { code: EXIT.usage, message: err.message };
  if (err instanceof OperationError) {
    const notFound =
      err.kind === 'unknown-environment' || err.kind === 'unknown-support-pod' || err.kind === 'retired' || err.kind === 'namespace-gone';
    return { code: notFound ? EXIT.notFound : EXIT.refused, message: err.message };
  }
  if (err instanceof WorkflowFailedError) return { code: EXIT.failed, message: `${err.message}: ${rootCause(err)}` };
  return { code: EXIT.failed, message: err instanceof Error ? err.message : String(err) };
}

/** Runs `devenv` with the process's arguments and exits with its code. With --json a failure, too, is JSON on stdout. */
export function main(): void {
  const argv = process.argv.slice(2);
  run(argv, (line) => console.log(line)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const { code, message, usage } = describeFailure(err);
      if (wantsJson(argv)) console.log(JSON.stringify({ error: message, exitCode: code, ...(usage ? { usage } : {}) }, null, 2));
      else if (code === EXIT.failed) console.error(`devenv: ${message}`);
      else if (err instanceof UsageError)
        console.error(err.usage ? `${message}\nusage: ${usage!.join('\n       ')}` : `${message}\n${USAGE}`);
      else console.error(message);
      process.exit(code);
    },
  );
}

if (require.main === module) main();
