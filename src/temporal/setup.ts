/**
 * What the service needs on a Temporal namespace before its workflows can run, made
 * idempotently at start-up: the search attributes the environment workflows upsert, and
 * the Schedules: the morning reset of every environment each working day, the weekly
 * savings summary (when SAVINGS_SUMMARY sets one), and the reconcile and the AWS
 * inventory refresh every few minutes.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type Connection,
  type ScheduleOptions,
} from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ALL_SEARCH_ATTRIBUTES } from '../search-attributes';
import { scopedId } from '../workflows/cluster';
import {
  awsInventoryWorkflow,
  INVENTORY_WORKFLOW_ID,
  morningResetWorkflow,
  reconcileWorkflow,
  RECONCILE_WORKFLOW_ID,
  savingsSummaryWorkflow,
} from '../workflows';
import type { Config } from '../config';
import type { SavingsSummarySetting } from '../domain/policy-values';
import type { Weekday } from '../domain/shutdown-policy';

export const MORNING_RESET_SCHEDULE_ID = 'devenv-morning-reset';
export const AWS_INVENTORY_SCHEDULE_ID = 'devenv-aws-inventory';
export const RECONCILE_SCHEDULE_ID = 'devenv-reconcile';
export const SAVINGS_SUMMARY_SCHEDULE_ID = 'devenv-savings-summary';

/**
 * Registers the project's search attributes. The dev server takes them as start-up flags;
 * a real cluster (and the time-skipping test server) needs this Operator API call once.
 */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const wanted = Object.fromEntries(
    ALL_SEARCH_ATTRIBUTES.map((key) => [key.name, temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`]]),
  );
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: wanted });
  } catch (err) {
    // ALREADY_EXISTS: registered by an earlier start, or by the dev server's flags.
    if ((err as { code?: number }).code !== 6) throw err;
  }
}

export interface MorningResetSettings {
  /** HH:mm in `timeZone`. */
  resetTime: string;
  timeZone: string;
  workingDays: Weekday[];
  taskQueue: string;
  /** CLUSTER_NAME: in the Schedule's and its workflows' ids (`<cluster>/devenv-morning-reset`), and given to the reset. */
  cluster?: string;
}

const DAY_NAMES = {
  Mon: 'MONDAY',
  Tue: 'TUESDAY',
  Wed: 'WEDNESDAY',
  Thu: 'THURSDAY',
  Fri: 'FRIDAY',
  Sat: 'SATURDAY',
  Sun: 'SUNDAY',
} as const;

export function morningResetSchedule(settings: MorningResetSettings): ScheduleOptions {
  const [hour, minute] = settings.resetTime.split(':').map(Number);
  return {
    scheduleId: scopedId(MORNING_RESET_SCHEDULE_ID, settings.cluster),
    spec: {
      calendars: [{ hour, minute, dayOfWeek: settings.workingDays.map((day) => DAY_NAMES[day]), comment: 'working-day morning reset' }],
      timezone: settings.timeZone,
    },
    action: {
      type: 'startWorkflow',
      workflowType: morningResetWorkflow,
      workflowId: scopedId('devenv-morning-reset', settings.cluster),
      ...(settings.cluster ? { args: [{ cluster: settings.cluster }] as const } : {}),
      taskQueue: settings.taskQueue,
      workflowExecutionTimeout: '1 hour',
    },
    // A reset missed while the cluster was down still runs if it is caught up within the hour.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
  };
}

export interface SavingsSummarySettings {
  /** SAVINGS_SUMMARY: the weekday and HH:mm, in `timeZone`. */
  summary: SavingsSummarySetting;
  timeZone: string;
  taskQueue: string;
  /** CLUSTER_NAME: in the Schedule's and its workflows' ids (`<cluster>/devenv-savings-summary`). */
  cluster?: string;
}

export function savingsSummarySchedule(settings: SavingsSummarySettings): ScheduleOptions {
  const [hour, minute] = settings.summary.time.split(':').map(Number);
  return {
    scheduleId: scopedId(SAVINGS_SUMMARY_SCHEDULE_ID, settings.cluster),
    spec: {
      calendars: [{ hour, minute, dayOfWeek: [DAY_NAMES[settings.summary.day]], comment: 'weekly savings summary' }],
      timezone: settings.timeZone,
    },
    action: {
      type: 'startWorkflow',
      workflowType: savingsSummaryWorkflow,
      workflowId: scopedId('devenv-savings-summary', settings.cluster),
      taskQueue: settings.taskQueue,
      // Long enough for the activity's retries to wait out a Slack outage.
      workflowExecutionTimeout: '1 day',
    },
    // A summary missed while the cluster was down is still worth posting the same day; later, the next week's tells.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '12 hours' },
  };
}

/** SAVINGS_SUMMARY set: its Schedule, created or brought in line; `off`: the Schedule an earlier setting made, deleted. */
export async function ensureSavingsSummarySchedule(
  client: Client,
  settings: Omit<SavingsSummarySettings, 'summary'> & { summary: SavingsSummarySetting | null },
): Promise<'created' | 'updated' | 'removed (SAVINGS_SUMMARY off)' | 'off (SAVINGS_SUMMARY off)'> {
  const { summary } = settings;
  if (summary) return ensureSchedule(client, savingsSummarySchedule({ ...settings, summary }));
  try {
    await client.schedule.getHandle(scopedId(SAVINGS_SUMMARY_SCHEDULE_ID, settings.cluster)).delete();
    return 'removed (SAVINGS_SUMMARY off)';
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return 'off (SAVINGS_SUMMARY off)';
    throw err;
  }
}

export interface IntervalScheduleSettings {
  intervalMinutes: number;
  taskQueue: string;
  /** CLUSTER_NAME: in the Schedule's and its workflows' ids. */
  cluster?: string;
}

/**
 * Starts `workflowType` every `intervalMinutes`. A run still going when the next is due
 * makes that one skip, and each run has one interval to finish: the next run is the retry.
 */
export function intervalSchedule(
  scheduleId: string,
  workflowType: Workflow,
  workflowId: string,
  { intervalMinutes, taskQueue, cluster }: IntervalScheduleSettings,
): ScheduleOptions {
  return {
    scheduleId: scopedId(scheduleId, cluster),
    spec: { intervals: [{ every: `${intervalMinutes} minutes` }] },
    action: {
      type: 'startWorkflow',
      workflowType,
      workflowId: scopedId(workflowId, cluster),
      taskQueue,
      workflowExecutionTimeout: `${intervalMinutes} minutes`,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: `${intervalMinutes} minutes` },
  };
}

export function ensureMorningResetSchedule(client: Client, settings: MorningResetSettings): Promise<'created' | 'updated'> {
  return ensureSchedule(client, morningResetSchedule(settings));
}

/** Creates the Schedule, or brings an existing one in line with the current settings. */
export async function ensureSchedule(client: Client, options: ScheduleOptions): Promise<'created' | 'updated'> {
  try {
    await client.schedule.create(options);
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(options.scheduleId).update((previous) => ({
    ...previous,
    spec: options.spec,
    action: options.action,
    policies: { ...previous.policies, ...options.policies },
  }));
  return 'updated';
}

/** Every Schedule the service runs, created or brought in line with the settings: what happened to each. */
export async function ensureSchedules(client: Client, config: Config): Promise<Record<string, string>> {
  const { taskQueue, cluster } = config.temporal;
  return {
    morningReset: await ensureMorningResetSchedule(client, {
      resetTime: config.resetTime,
      timeZone: config.policy.timeZone,
      workingDays: config.policy.workingDays,
      taskQueue,
      cluster,
    }),
    savingsSummary: await ensureSavingsSummarySchedule(client, {
      summary: config.savings.summary,
      timeZone: config.policy.timeZone,
      taskQueue,
      cluster,
    }),
    reconcile: await ensureSchedule(
      client,
      intervalSchedule(RECONCILE_SCHEDULE_ID, reconcileWorkflow, RECONCILE_WORKFLOW_ID, {
        intervalMinutes: config.enrolment.reconcileIntervalMinutes,
        taskQueue,
        cluster,
      }),
    ),
    awsInventory: config.aws.regions.length
      ? await ensureSchedule(
          client,
          intervalSchedule(AWS_INVENTORY_SCHEDULE_ID, awsInventoryWorkflow, INVENTORY_WORKFLOW_ID, {
            intervalMinutes: config.aws.inventoryIntervalMinutes,
            taskQueue,
            cluster,
          }),
        )
      : 'off (AWS_REGIONS unset)',
  };
}
