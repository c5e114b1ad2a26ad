/**
 * What the service needs on a Temporal namespace before its workflows can run, made
 * idempotently at start-up: the search attributes the environment workflows upsert, and
 * the Schedules: the morning reset of every environment each working day, and the
 * reconcile and the AWS inventory refresh every few minutes.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type Connection, type ScheduleOptions } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ALL_SEARCH_ATTRIBUTES } from '../search-attributes';
import { scopedId } from '../workflows/cluster';
import { awsInventoryWorkflow, INVENTORY_WORKFLOW_ID, morningResetWorkflow, reconcileWorkflow, RECONCILE_WORKFLOW_ID } from '../workflows';
import type { Config } from '../config';
import type { Weekday } from '../domain/shutdown-policy';

export const MORNING_RESET_SCHEDULE_ID = 'devenv-morning-reset';
export const AWS_INVENTORY_SCHEDULE_ID = 'devenv-aws-inventory';
export const RECONCILE_SCHEDULE_ID = 'devenv-reconcile';

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
