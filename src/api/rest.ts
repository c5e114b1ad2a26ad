/**
 * The REST API under /api/v1, its OpenAPI document at /openapi.json and Swagger UI at /docs.
 *
 * One table of routes drives the koa router and the OpenAPI document, and every route is
 * a `/devenv` command in disguise: it is parsed by the same command table as Slack's
 * (src/commands.ts), so names, durations and sizes are checked the same way, and run
 * through the same Temporal calls (src/client/environments.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { z } from 'zod';
import { createDocument } from 'zod-openapi';
import { familyOf, formatCommand, parseCommand, type Command, type CommandFamily, type CommandName } from '../commands';
import { InProgressError, OperationError, type EnvironmentsClient, type SupportPodListing } from '../client/environments';
import type { Logger } from '../logger';
import { savingsReport, timeline, weeklyReport, LEDGER_DAYS, type Prices } from '../domain/savings';
import type { Metrics } from './metrics';

export interface ApiToken {
  /** Who the token belongs to, e.g. `ci` or `alice`: actions are recorded as `api:<name>`. */
  name: string;
  /** The SHA-256 of the token, in hex (`tokenSha256`): the token itself is never kept. */
  sha256: string;
  /** `read` tokens may only look; `control` tokens may also start, stop, prolongate and manage support pods. */
  scope: 'read' | 'control';
}

export interface RestApiOptions {
  environments: EnvironmentsClient;
  tokens: readonly ApiToken[];
  logger: Logger;
  metrics: Metrics;
  supportSizes: readonly string[];
  /** Where support-pod workflows run; without it the support routes answer 503. */
  supportTaskQueue?: string;
  supportPodTtlMs?: number;
  /** How long start, stop and prolongate wait for the environment before answering 202 (still in progress); default 20 s (COMMAND_WAIT_SECONDS). */
  commandWaitMs?: number;
  /** The read routes the /ui page shows (`shownByUi`) answer without a token (UI_PUBLIC); a token presented is still checked. */
  uiPublic?: boolean;
  /** SAVINGS_PRICE_*: what turns the savings into money; without any, `cost` is null. */
  savingsPrices?: Prices;
}

export const DEFAULT_COMMAND_WAIT_MS = 20_000;

/** What an ApiToken keeps of a token: its SHA-256, hex. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

// ---- Schemas: they validate requests, describe responses, and generate the OpenAPI document.

const namespaceParam = z.object({
  namespace: z.string().meta({ description: 'the Kubernetes namespace (a DNS-1123 label)', example: 'dev1' }),
});
const supportNameParam = z.object({
  name: z.string().meta({ description: 'the support pod name (a DNS-1123 label)', example: 'debug-alice' }),
});

const phase = z.enum(['running', 'stopping', 'stopped', 'starting', 'disabled']);

export const errorBody = z
  .object({
    error: z.string().meta({ description: 'what was wrong, in words' }),
    usage: z
      .array(z.string())
      .optional()
      .meta({ description: 'the request this route expects (method, path and JSON body), when the request did not fit it' }),
  })
  .meta({ id: 'Error' });

export const environmentSummary = z
  .object({
    namespace: z.string(),
    phase,
    enabled: z.boolean(),
    nextShutdown: z.string().nullable().meta({ description: 'ISO instant of the next scheduled shutdown' }),
    owners: z.array(z.string()).meta({
      description:
        'Slack user (U…, W…) and user-group (S…) ids from the devenv-scheduler/owners annotation, as the environment last recorded its policy; empty when none',
    }),
  })
  .meta({ id: 'EnvironmentSummary' });

export const environmentList = z.object({ environments: z.array(environmentSummary) }).meta({ id: 'EnvironmentList' });

const lastAction = z.object({ action: z.string(), by: z.string(), at: z.string(), detail: z.string().optional() });

export const environmentStatus = z
  .object({
    namespace: z.string(),
    phase,
    enabled: z.boolean(),
    shutdownAt: z.string().nullable(),
    shutdownDescription: z.string().nullable().meta({ example: 'today 19:00 CET, in 2h 10m' }),
    wakeAt: z.string().nullable().optional().meta({ description: 'ISO instant of the planned morning wake-up, while stopped' }),
    wakeDescription: z.string().nullable().meta({
      description: 'the next morning wake-up (while running: the first after its shutdown); null without one',
      example: 'tomorrow 08:00 CET, in 13h 0m',
    }),
    prolongedMinutes: z.number().int(),
    warningsSent: z.array(z.number().int()),
    lastAction: lastAction.nullable(),
    policy: z.object({
      shutdownTime: z.string(),
      timeZone: z.string(),
      workingDays: z.array(z.string()),
      wakeTime: z.string().optional(),
      owners: z
        .array(z.string())
        .optional()
        .meta({ description: 'Slack user (U…, W…) and user-group (S…) ids from the devenv-scheduler/owners annotation; absent when none' }),
    }),
    problems: z
      .array(z.object({ half: z.enum(['kubernetes', 'aws']), action: z.enum(['stop', 'start']), detail: z.string() }))
      .optional()
      .meta({
        description:
          'what the last stop or start could not do, per half: e.g. workloads stopped but the tagged AWS instances still running',
      }),
  })
  .meta({ id: 'EnvironmentStatus' });

export const environmentHistory = z
  .object({
    namespace: z.string(),
    timeZone: z.string().meta({ description: "the environment's zone", example: 'Europe/Berlin' }),
    entries: z.array(lastAction).meta({
      description:
        'what happened to the environment, oldest first: the last 50 entries it keeps at most (fewer when their details are long)',
    }),
  })
  .meta({ id: 'EnvironmentHistory' });

export const environmentWhy = z
  .object({
    namespace: z.string(),
    why: z.string().meta({
      description: 'what happens to it next and why, in one sentence',
      example: 'stops today 19:00 CET (prolonged 1h by U0ANA at 17:40)',
    }),
  })
  .meta({ id: 'EnvironmentWhy' });

const figureFields = {
  hoursAsleep: z.number().meta({ description: 'hours asleep within the period (for a total: environment-hours)' }),
  cpuCoreHours: z
    .number()
    .meta({ description: 'CPU requests put to sleep (pod-template requests times the replicas scaled down), in core-hours' }),
  memoryGiBHours: z.number().meta({ description: 'memory requests put to sleep, in GiB-hours' }),
  instanceHours: z
    .record(z.string(), z.number())
    .meta({ description: 'EC2 and RDS instance-hours stopped, by "<ec2|rds> <instance type>"', example: { 'ec2 t3.medium': 26 } }),
  cost: z.number().nullable().meta({ description: 'the figures at the SAVINGS_PRICE_* prices, in `currency`; null without prices' }),
};

export const savingsBody = z
  .object({
    period: z.enum(['week', 'month']),
    from: z.string().meta({ description: 'start of the period (ISO): 7 or 30 days before `to`' }),
    to: z.string().meta({ description: 'end of the period (ISO): now' }),
    currency: z.string().nullable().meta({ description: 'SAVINGS_CURRENCY; null when not set' }),
    environments: z.array(z.object({ namespace: z.string(), ...figureFields })),
    total: z.object(figureFields),
  })
  .meta({ id: 'Savings' });

export const weeklySavings = z
  .object({
    currency: z.string().nullable(),
    weeks: z
      .array(
        z.object({
          from: z.string().meta({ description: 'Monday 00:00 UTC (ISO)' }),
          to: z.string().meta({ description: 'the next Monday 00:00 UTC (ISO); the current week is counted up to now' }),
          ...figureFields,
        }),
      )
      .meta({ description: 'oldest first, the current week last: every environment added up' }),
  })
  .meta({ id: 'WeeklySavings' });

export const environmentTimeline = z
  .object({
    namespace: z.string(),
    from: z.string(),
    to: z.string(),
    asleep: z
      .array(z.object({ from: z.string(), to: z.string().nullable().meta({ description: 'null: still asleep' }) }))
      .meta({ description: 'its sleeps within [from, to], clipped to it, oldest first' }),
  })
  .meta({ id: 'EnvironmentTimeline' });

const savingsQuery = z.object({
  period: z.enum(['week', 'month']).optional().meta({ description: 'the last 7 days (default) or the last 30' }),
  namespace: z.string().optional().meta({ description: 'one environment alone' }),
});
const weeklyQuery = z.object({
  weeks: z.coerce
    .number()
    .int()
    .min(1)
    .max(9)
    .optional()
    .meta({ description: 'how many calendar weeks, the current one included (default 8; the ledger keeps 62 days)' }),
});
const timelineQuery = z.object({
  days: z.coerce
    .number()
    .int()
    .min(1)
    .max(LEDGER_DAYS)
    .optional()
    .meta({ description: `how many days back (default 14, at most ${LEDGER_DAYS})` }),
});

const workloadChange = z.object({ kind: z.string(), name: z.string(), from: z.number().int(), to: z.number().int() });

export const actionResult = z
  .object({
    namespace: z.string(),
    phase,
    shutdownAt: z.string().nullable(),
    message: z.string().meta({ description: 'one line for a human, the same as the Slack reply' }),
    report: z.object({ changed: z.array(workloadChange), unchanged: z.number().int(), durationMs: z.number() }).optional(),
  })
  .meta({ id: 'ActionResult' });

export const prolongateBody = z
  .object({ duration: z.string().meta({ description: 'how much later, e.g. 1h, 90m or 2h30m', example: '2h' }) })
  .meta({ id: 'ProlongateRequest' });

export const supportPodBody = z
  .object({
    name: z.string().meta({ example: 'debug-alice' }),
    size: z.string().meta({ description: 'a size of the catalogue (XS..XL by default)', example: 'M' }),
  })
  .meta({ id: 'SupportPodRequest' });

export const supportPod = z
  .object({
    name: z.string(),
    status: z.enum(['managed', 'creating', 'waiting', 'pod-missing', 'orphaned', 'deleting', 'unknown']).meta({
      description:
        'managed: its pod is there and its workflow deletes it at expiresAt; creating: not created yet; waiting: the name is held by a pod that is not its own (the previous one still terminating); pod-missing: its pod was deleted outside the scheduler; orphaned: a pod no workflow manages, killed at deadlineAt if it has one; deleting: being deleted; unknown: the cluster could not be read',
    }),
    note: z
      .string()
      .meta({ description: 'one sentence for people saying what this is and what happens to it next; empty for a plain managed pod' }),
    size: z.string().nullable(),
    phase: z.string().nullable().meta({
      description: "its pod's phase as the cluster has it now (Pending, Running, Succeeded, Failed); null when it has no pod of its own",
    }),
    ready: z.boolean().nullable().meta({ description: "its pod's Ready condition; null when it has no pod of its own" }),
    createdBy: z.string().nullable().meta({ description: 'who started it: the pod records it, else its workflow; null when neither does' }),
    expiresAt: z.string().nullable().meta({ description: 'when its workflow deletes it; null when no workflow will' }),
    deadlineAt: z.string().nullable().meta({
      description:
        'when the kubelet kills its pod (activeDeadlineSeconds, the backstop for a pod whose workflow is gone); null without one',
    }),
    deletingSince: z.string().nullable().meta({ description: 'when deletion of its pod was asked for; null unless it is terminating' }),
    managed: z.boolean().meta({ description: 'a running workflow manages this name' }),
  })
  .meta({ id: 'SupportPod' });

export const supportPodList = z
  .object({
    supportPods: z.array(supportPod),
    podsUnavailable: z.string().nullable().meta({
      description: 'why the pods could not be read from Kubernetes (the workflows are listed anyway, as unknown); null when they were',
    }),
  })
  .meta({ id: 'SupportPodList' });
const accepted = z.object({ message: z.string() }).meta({ id: 'Accepted' });

export const inProgress = z
  .object({
    namespace: z.string(),
    action: z.enum(['start', 'stop', 'prolongate']),
    accepted: z
      .boolean()
      .meta({ description: 'true: the environment has taken the action up and finishes it; false: no worker has taken it up yet' }),
    message: z.string().meta({ example: 'stop dev1 is still in progress; its status shows when it is done' }),
    status: z
      .string()
      .meta({ description: "the environment's status, which shows when the action is done", example: '/api/v1/environments/dev1' }),
  })
  .meta({ id: 'InProgress' });

// ---- The route table.

type Method = 'get' | 'post' | 'delete';

type CommandOf<N extends CommandName> = Extract<Command, { name: N }>;

const isCommand = <N extends CommandName>(command: Command, name: N): command is CommandOf<N> => command.name === name;

interface RouteSpec<N extends CommandName> {
  method: Method;
  /** OpenAPI form, `{param}`. */
  path: string;
  summary: string;
  params?: z.ZodObject;
  /** Query parameters, all optional; validated, and given to `command` and `run`. */
  query?: z.ZodObject;
  body?: z.ZodObject;
  status: 200 | 202;
  response: z.ZodType;
  /** Waits on the environment (a workflow Update): past the command wait it answers 202 with `InProgress`. */
  waits?: true;
  /** A read route the /ui page shows: under UI_PUBLIC it answers without a token. */
  shownByUi?: true;
  /** The `/devenv` command this request is: its name, and its text, parsed by the same table as Slack's. */
  runs: N;
  command(params: Record<string, string>, body: Record<string, string>, query: Record<string, string>): string;
  run(command: CommandOf<N>, by: string, query: Record<string, unknown>): Promise<unknown>;
}

/** A route of the table, whichever command it runs. */
interface Route extends Omit<RouteSpec<CommandName>, 'run'> {
  run(command: Command, by: string, query: Record<string, unknown>): Promise<unknown>;
  /** The request it expects, for error bodies: method, path and JSON body. */
  usage: string;
}

function route<N extends CommandName>(spec: RouteSpec<N>): Route {
  const fields = spec.body ? Object.keys(spec.body.shape).map((field) => `"${field}": "<${field}>"`) : [];
  return {
    ...spec,
    usage: `${spec.method.toUpperCase()} ${spec.path}${fields.length ? ` with the JSON body {${fields.join(', ')}}` : ''}`,
    run: (command, by, query) => {
      // The command text is built from `runs`' own grammar, so anything else is a mistake in this table.
      if (!isCommand(command, spec.runs))
        throw new Error(`${spec.method.toUpperCase()} ${spec.path} runs ${spec.runs}, not ${command.name}`);
      return spec.run(command, by, query);
    },
  };
}

const ERRORS: Record<number, string> = {
  400: 'the request body is not JSON (or could not be read)',
  401: 'no token, or not a valid one',
  403: 'the token may not do this: it is read-only, or (tokens not in API_SUPPORT_ADMINS) the support pod is larger than SUPPORT_MAX_SIZE or was started by someone else',
  404: 'no such environment or support pod, or an environment that is no longer managed (its namespace was deleted from the cluster, or it left management)',
  409: 'refused by the environment in its current state (e.g. prolongating a stopped one), the support pod exists already or its name is taken by a pod no workflow manages, or the token has SUPPORT_MAX_PODS_PER_USER support pods already',
  422: 'the request does not fit the command: bad namespace name, duration or size',
};

export function restRoutes(
  options: Pick<RestApiOptions, 'environments' | 'supportTaskQueue' | 'supportPodTtlMs' | 'commandWaitMs' | 'savingsPrices'>,
): Route[] {
  const { environments, savingsPrices } = options;
  const wait = { waitMs: options.commandWaitMs ?? DEFAULT_COMMAND_WAIT_MS };
  const needsQueue = (): string => {
    if (!options.supportTaskQueue) throw new OperationError('unknown-support-pod', 'support pods are not available on this scheduler');
    return options.supportTaskQueue;
  };
  const podView = (listing: SupportPodListing): z.infer<typeof supportPod> => {
    // The pod shown as its own: for `waiting` and `pod-missing` the pod of that name is another one.
    const own = listing.status === 'managed' || listing.status === 'orphaned' || listing.status === 'deleting' ? listing.pod : null;
    return {
      name: listing.name,
      status: listing.status,
      note: listing.note,
      size: listing.size,
      phase: own?.phase ?? null,
      ready: own ? own.ready : null,
      createdBy: listing.requestedBy,
      expiresAt: listing.expiresAt,
      deadlineAt: own?.deadlineAt ?? null,
      deletingSince: own?.deletingSince ?? null,
      managed: listing.workflow !== null,
    };
  };
  const actionView = (result: Awaited<ReturnType<EnvironmentsClient['start']>>) => ({
    namespace: result.namespace,
    phase: result.phase,
    shutdownAt: result.shutdownAt,
    message: result.message,
    ...(result.report
      ? { report: { changed: result.report.changed, unchanged: result.report.unchanged, durationMs: result.report.durationMs } }
      : {}),
  });

  return [
    route({
      method: 'get',
      path: '/api/v1/environments',
      summary: 'Every enrolled environment with its phase, next shutdown and owners',
      status: 200,
      response: environmentList,
      shownByUi: true,
      runs: 'list',
      command: () => 'list',
      run: async () => ({
        environments: (await environments.list()).map(({ namespace, phase, enabled, nextShutdown, policy }) => ({
          namespace,
          phase,
          enabled,
          nextShutdown,
          owners: policy?.owners ?? [],
        })),
      }),
    }),
    route({
      method: 'get',
      path: '/api/v1/environments/{namespace}',
      summary: "One environment's status: phase, next shutdown, prolongation, last action",
      params: namespaceParam,
      status: 200,
      response: environmentStatus,
      runs: 'status',
      command: (p) => `status ${p.namespace}`,
      run: async (command) => {
        const status = await environments.status(command.namespace);
        return {
          ...status,
          policy: {
            shutdownTime: status.policy.shutdownTime,
            timeZone: status.policy.timeZone,
            workingDays: status.policy.workingDays,
            ...(status.policy.owners ? { owners: status.policy.owners } : {}),
          },
        };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/environments/{namespace}/history',
      summary: "The environment's history, oldest first: stops, starts, warnings, prolongations, policy changes, failures; who and when",
      params: namespaceParam,
      status: 200,
      response: environmentHistory,
      runs: 'history',
      command: (p) => `history ${p.namespace}`,
      run: (command) => environments.history(command.namespace),
    }),
    route({
      method: 'get',
      path: '/api/v1/environments/{namespace}/why',
      summary: 'What happens to the environment next and why, in one sentence',
      params: namespaceParam,
      status: 200,
      response: environmentWhy,
      runs: 'why',
      command: (p) => `why ${p.namespace}`,
      run: async (command) => {
        const { namespace, sentence } = await environments.why(command.namespace);
        return { namespace, why: sentence };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/environments/{namespace}/timeline',
      summary: 'When the environment slept in the last days (14 by default), from its ledger of sleeps',
      params: namespaceParam,
      query: timelineQuery,
      status: 200,
      response: environmentTimeline,
      shownByUi: true,
      runs: 'savings',
      command: (p) => `savings ${p.namespace} week`,
      run: async (command, _by, query) => {
        const [ledger] = await environments.ledgers(command.namespace);
        return timeline(command.namespace!, ledger?.sleeps ?? [], (query.days as number | undefined) ?? 14, new Date());
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/savings',
      summary:
        'What sleeping saved in the last week or month, per environment and in total: CPU and memory requests put to sleep, EC2/RDS instance-hours, and their cost at the configured prices',
      query: savingsQuery,
      status: 200,
      response: savingsBody,
      shownByUi: true,
      runs: 'savings',
      command: (_p, _b, q) => ['savings', q.namespace, q.namespace ? (q.period ?? 'week') : q.period].filter(Boolean).join(' '),
      run: async (command) => savingsReport(await environments.ledgers(command.namespace), command.period, new Date(), savingsPrices),
    }),
    route({
      method: 'get',
      path: '/api/v1/savings/weekly',
      summary: 'What sleeping saved, every environment added up, in each of the last calendar weeks (Monday 00:00 UTC), oldest first',
      query: weeklyQuery,
      status: 200,
      response: weeklySavings,
      shownByUi: true,
      runs: 'savings',
      command: () => 'savings',
      run: async (_command, _by, query) =>
        weeklyReport(await environments.ledgers(), (query.weeks as number | undefined) ?? 8, new Date(), savingsPrices),
    }),
    route({
      method: 'post',
      path: '/api/v1/environments/{namespace}/start',
      summary:
        'Start the environment (after hours: for the after-hours window); answers when its workloads are restored, or 202 if that takes longer than the command wait',
      params: namespaceParam,
      status: 200,
      response: actionResult,
      waits: true,
      runs: 'start',
      command: (p) => `start ${p.namespace}`,
      run: async (command, by) => actionView(await environments.start(command.namespace, by, wait)),
    }),
    route({
      method: 'post',
      path: '/api/v1/environments/{namespace}/stop',
      summary:
        'Stop the environment now: replica counts saved, workloads scaled to 0; answers when done, or 202 if that takes longer than the command wait',
      params: namespaceParam,
      status: 200,
      response: actionResult,
      waits: true,
      runs: 'stop',
      command: (p) => `stop ${p.namespace}`,
      run: async (command, by) => actionView(await environments.stop(command.namespace, by, wait)),
    }),
    route({
      method: 'post',
      path: '/api/v1/environments/{namespace}/prolongate',
      summary: "Move today's shutdown later",
      params: namespaceParam,
      body: prolongateBody,
      status: 200,
      response: actionResult,
      waits: true,
      runs: 'prolongate',
      command: (p, b) => `prolongate ${p.namespace} for ${b.duration}`,
      run: async ({ namespace, minutes }, by) => actionView(await environments.prolongate(namespace, minutes, by, wait)),
    }),
    route({
      method: 'get',
      path: '/api/v1/support-pods',
      summary: 'Every pod of the support namespace, as the cluster has it now, and every running support-pod workflow, joined by name',
      status: 200,
      response: supportPodList,
      runs: 'support list',
      command: () => 'support list',
      run: async () => {
        const { supportPods, podsUnavailable } = await environments.listSupportPods();
        return { supportPods: supportPods.map(podView), podsUnavailable };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/support-pods',
      summary: 'Create a support pod of a catalogue size; it is deleted on request or after its time to live',
      body: supportPodBody,
      status: 202,
      response: accepted,
      runs: 'support start',
      command: (_p, b) => `support start ${b.name} ${b.size}`,
      run: async ({ supportName, size }, by) => {
        const { waitsFor } = await environments.startSupportPod({
          name: supportName,
          size,
          by,
          taskQueue: needsQueue(),
          ttlMs: options.supportPodTtlMs,
          limitWaitMs: wait.waitMs,
        });
        return {
          message: waitsFor
            ? `support pod ${supportName} (${size}) is created once the previous pod of that name, deleted at ${waitsFor.deletingSince}, has finished terminating`
            : `support pod ${supportName} (${size}) is being created`,
        };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/support-pods/{name}',
      summary: 'One support pod name: its pod and its workflow, as in the list',
      params: supportNameParam,
      status: 200,
      response: supportPod,
      // There is no `support status` command; `support stop <name>` has the same name rule.
      runs: 'support stop',
      command: (p) => `support stop ${p.name}`,
      run: async ({ supportName }) => podView(await environments.supportPod(supportName)),
    }),
    route({
      method: 'delete',
      path: '/api/v1/support-pods/{name}',
      summary: 'Delete a support pod',
      params: supportNameParam,
      status: 202,
      response: accepted,
      runs: 'support stop',
      command: (p) => `support stop ${p.name}`,
      run: async ({ supportName }, by) => {
        await environments.stopSupportPod(supportName, by);
        return { message: `support pod ${supportName} is being deleted` };
      },
    }),
  ];
}

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema } } });

export function openApiDocument(routes: Route[], { uiPublic = false }: { uiPublic?: boolean } = {}): ReturnType<typeof createDocument> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const readOnly = route.method === 'get';
    paths[route.path] ??= {};
    paths[route.path]![route.method] = {
      summary: route.summary,
      operationId: `${route.method}${route.path
        .replace(/^\/api\/v1/, '')
        .replace(/[{}]/g, '')
        .replace(/\/(\w)/g, (_m, c: string) => c.toUpperCase())}`,
      // An empty requirement: this one may be called without a token.
      security: uiPublic && route.shownByUi ? [{ bearer: [] }, {}] : [{ bearer: [] }],
      ...(route.params || route.query
        ? { requestParams: { ...(route.params ? { path: route.params } : {}), ...(route.query ? { query: route.query } : {}) } }
        : {}),
      ...(route.body ? { requestBody: { required: true, ...json(route.body) } } : {}),
      responses: {
        [route.status]: { description: 'done', ...json(route.response) },
        ...(route.waits
          ? {
              202: {
                description:
                  'not done within the command wait (COMMAND_WAIT_SECONDS, default 20 s): the action goes on; GET the environment (`status`) to see when it is done',
                ...json(inProgress),
              },
            }
          : {}),
        ...Object.fromEntries(
          Object.entries(ERRORS)
            .filter(
              ([code]) =>
                !(readOnly && (code === '403' || code === '409')) &&
                (route.params || route.body || route.query || code !== '422') &&
                (route.params || code !== '404') &&
                (route.body || code !== '400'),
            )
            .map(([code, description]) => [code, { description, ...json(errorBody) }]),
        ),
      },
    };
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'devenv-scheduler',
      version: '1',
      description:
        'Start, stop, prolongate and inspect Kubernetes dev environments, and manage support pods. The same commands as `/devenv` in Slack.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'a token from API_TOKENS (control) or API_READ_TOKENS (read-only)' },
      },
    },
    paths: paths as Parameters<typeof createDocument>[0]['paths'],
  });
}

/** Who reads a UI_PUBLIC route without a token: it may only look, and is named in no action. */
const UI_VISITOR: ApiToken = { name: 'ui-visitor', sha256: '', scope: 'read' };

/** How old what a visitor is shown may be: the page reloads it far less often. */
const VISITOR_SNAPSHOT_MS = 5_000;
/** Namespaces whose ledger a visitor's look keeps at once (names are the visitor's to choose). */
const VISITOR_LEDGERS_KEPT = 1_000;

/** `load` of each key at most once per `ttlMs`, callers meanwhile sharing its promise; at most `kept` keys at once. */
function snapshots<T>(ttlMs: number, kept: number, load: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const taken = new Map<string, { at: number; value: Promise<T> }>();
  return (key) => {
    const now = Date.now();
    const known = taken.get(key);
    if (known && now - known.at < ttlMs) return known.value;
    taken.delete(key);
    for (const [name, { at }] of taken) if (now - at >= ttlMs || taken.size >= kept) taken.delete(name);
    const value = load(key);
    taken.set(key, { at: now, value });
    return value;
  };
}

/**
 * The environments as a UI_PUBLIC visitor sees them: every listing and ledger from a
 * snapshot shared by all visitors for VISITOR_SNAPSHOT_MS, so requests without a token,
 * which anyone can send, are not each a listing of every environment from Temporal.
 */
function visitorView(environments: EnvironmentsClient): EnvironmentsClient {
  const list = snapshots(VISITOR_SNAPSHOT_MS, 1, () => environments.list());
  const ledgers = snapshots(VISITOR_SNAPSHOT_MS, VISITOR_LEDGERS_KEPT, (key) => environments.ledgers(key === '' ? undefined : key));
  return Object.create(environments, {
    list: { value: () => list('') },
    ledgers: { value: (namespace?: string) => ledgers(namespace ?? '') },
  }) as EnvironmentsClient;
}

const statusFor: Record<OperationError['kind'], number> = {
  'unknown-environment': 404,
  'unknown-support-pod': 404,
  retired: 404,
  'namespace-gone': 404,
  rejected: 409,
  conflict: 409,
  'in-progress': 202,
  forbidden: 403,
  limit: 409,
  failed: 502,
};

export function createRestRouter(options: RestApiOptions): Router {
  const { logger, supportSizes } = options;
  const routes = restRoutes(options);
  const visitorRoutes = restRoutes({ ...options, environments: visitorView(options.environments) });
  const document = openApiDocument(routes, { uiPublic: options.uiPublic });
  const router = new Router();
  const stored = options.tokens.map((token) => {
    const digest = Buffer.from(token.sha256, 'hex');
    if (digest.length !== 32 || !/^[0-9a-f]{64}$/i.test(token.sha256))
      throw new Error(`createRestRouter: the token "${token.name}" has no valid SHA-256 (64 hex digits)`);
    return { token, digest };
  });

  /**
   * The token whose digest the presented token's SHA-256 equals. Digests are all 32 bytes, so
   * timingSafeEqual compares each in constant time, and every stored token is compared, so
   * neither how much of a token is right nor which one matched shows in the time taken.
   */
  function tokenFor(presented: string): ApiToken | undefined {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: ApiToken | undefined;
    for (const candidate of stored) {
      if (timingSafeEqual(candidate.digest, digest)) found ??= candidate.token;
    }
    return found;
  }

  function authenticate(ctx: Context): ApiToken | undefined {
    const presented = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1];
    const token = presented === undefined ? undefined : tokenFor(presented);
    if (!token) {
      logger.warn({ path: ctx.path, ip: ctx.ip, presented: presented !== undefined }, 'API request refused: no valid token');
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer');
      ctx.body = { error: presented === undefined ? 'an Authorization: Bearer <token> header is required' : 'the token is not valid' };
    }
    return token;
  }

  /** The body, or the status and words of why it is not JSON that could be read. */
  async function jsonBody(ctx: Context): Promise<{ ok: true; body: unknown } | { ok: false; error: string }> {
    const raw = await getRawBody(ctx.req, { limit: '16kb', encoding: 'utf8' }).catch(() => undefined);
    if (raw === undefined) return { ok: false, error: 'the request body could not be read' };
    try {
      return { ok: true, body: JSON.parse(raw || '{}') };
    } catch {
      return { ok: false, error: 'the request body is not JSON' };
    }
  }

  const allowedBy = (scope: ApiToken['scope'], family: CommandFamily) => family === 'read' || scope === 'control';

  for (const [index, route] of routes.entries()) {
    if (route.shownByUi && route.method !== 'get')
      throw new Error(`${route.method.toUpperCase()} ${route.path}: only a read route may be shown by /ui`);
    const koaPath = route.path.replace(/\{(\w+)\}/g, ':$1');
    router[route.method](koaPath, async (ctx) => {
      // Under UI_PUBLIC a request with no Authorization header at all reads as the page's
      // visitor; one with a header is checked like any other, so a wrong token is still refused.
      const token = options.uiPublic && route.shownByUi && ctx.get('authorization') === '' ? UI_VISITOR : authenticate(ctx);
      if (!token) return;
      const params = route.params?.safeParse(ctx.params);
      const query = route.query?.safeParse(ctx.query);
      if (query && !query.success) {
        ctx.status = 422;
        ctx.body = {
          error: `query: ${query.error.issues.map((i) => `${i.path.join('.') || 'query'} ${i.message}`).join('; ')}`,
          usage: [route.usage],
        };
        return;
      }
      const queryValues = (query?.data ?? {}) as Record<string, unknown>;
      let body: Record<string, string> = {};
      if (route.body) {
        const raw = await jsonBody(ctx);
        if (!raw.ok) {
          ctx.status = 400;
          ctx.body = { error: raw.error, usage: [route.usage] };
          return;
        }
        const parsed = route.body.safeParse(raw.body);
        if (!parsed.success) {
          ctx.status = 422;
          ctx.body = {
            error: `body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'} ${i.message}`).join('; ')}`,
            usage: [route.usage],
          };
          return;
        }
        body = parsed.data as Record<string, string>;
      }
      if (params && !params.success) {
        ctx.status = 422;
        ctx.body = { error: 'bad path parameters', usage: [route.usage] };
        return;
      }
      const parsed = parseCommand(
        route.command((params?.data ?? {}) as Record<string, string>, body, queryValues as Record<string, string>),
        { supportSizes },
      );
      if (!parsed.ok) {
        options.metrics.commands.inc({ source: 'api', command: parsed.nearest ?? 'unknown', outcome: 'invalid' });
        ctx.status = 422;
        ctx.body = { error: parsed.error, usage: [route.usage] };
        return;
      }
      // Looking at one support pod borrows `support stop`'s name rule, but it only looks.
      const family = route.method === 'get' ? 'read' : familyOf(parsed.command);
      const kind = parsed.command.name;
      if (!allowedBy(token.scope, family)) {
        logger.warn({ token: token.name, command: formatCommand(parsed.command) }, 'API request refused: read-only token');
        options.metrics.commands.inc({ source: 'api', command: kind, outcome: 'refused' });
        ctx.status = 403;
        ctx.body = { error: `the token "${token.name}" is read-only; ${formatCommand(parsed.command)} needs a control token` };
        return;
      }
      try {
        const run = token === UI_VISITOR ? visitorRoutes[index]!.run : route.run;
        ctx.body = await run(parsed.command, `api:${token.name}`, queryValues);
        ctx.status = route.status;
        options.metrics.commands.inc({ source: 'api', command: kind, outcome: 'ok' });
        if (family !== 'read') logger.info({ token: token.name, command: formatCommand(parsed.command) }, 'API command done');
      } catch (err) {
        options.metrics.commands.inc({ source: 'api', command: kind, outcome: err instanceof OperationError ? err.kind : 'error' });
        if (!(err instanceof OperationError)) throw err;
        if (err instanceof InProgressError)
          logger.info(
            { token: token.name, command: formatCommand(parsed.command), accepted: err.accepted },
            'API command still in progress',
          );
        ctx.status = statusFor[err.kind];
        ctx.body =
          err instanceof InProgressError
            ? ({
                namespace: err.namespace,
                action: err.action,
                accepted: err.accepted,
                message: err.message,
                status: `/api/v1/environments/${err.namespace}`,
              } satisfies z.infer<typeof inProgress>)
            : { error: err.message };
      }
    });
  }

  router.get('/openapi.json', (ctx) => {
    ctx.body = document;
  });

  const swaggerDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const assets: Record<string, string> = {
    'swagger-ui.css': 'text/css',
    'swagger-ui-bundle.js': 'application/javascript',
  };
  router.get('/docs', (ctx) => {
    ctx.type = 'html';
    ctx.body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devenv-scheduler API</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>`;
  });
  // A separate file rather than inline script, so a strict Content-Security-Policy can stay on.
  router.get('/docs/init.js', (ctx) => {
    ctx.type = 'application/javascript';
    ctx.body = "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });";
  });
  router.get('/docs/:asset', (ctx) => {
    const type = assets[ctx.params.asset ?? ''];
    if (!type) {
      ctx.status = 404;
      return;
    }
    ctx.type = type;
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = readFileSync(path.join(swaggerDir, ctx.params.asset!));
  });

  return router;
}
