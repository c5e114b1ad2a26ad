/**
 * Scheduled stops are handed to a worker a few seconds before their instant and held
 * there until it, by the worker's clock. When hundreds of environments shut down at the
 * same minute, the queueing in Temporal (timers, workflow tasks, activity dispatch) then
 * happens before the instant instead of after it.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StopTiming } from './contracts';

/**
 * The longest a stop is held: below the stop activities' one-minute heartbeat timeout,
 * and a bound on the wait should this worker's clock run far behind the server's.
 */
export const MAX_HOLD_MS = 30_000;

/** Resolves at `timing.notBefore` (at once if it is past or absent); in an activity, a cancellation ends the wait. */
export async function holdUntil(timing: StopTiming | undefined): Promise<void> {
  if (!timing) return;
  const waitMs = Math.min(Date.parse(timing.notBefore) - Date.now(), MAX_HOLD_MS);
  if (!(waitMs > 0)) return;
  // Also called outside an activity (scripts, tests), where there is no cancellation to heed.
  const activity = asyncLocalStorage.getStore();
  await (activity ? activity.sleep(waitMs) : sleep(waitMs));
}
