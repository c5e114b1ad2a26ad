/**
 * Stopping and starting the EC2 instances, RDS DB instances and Aurora DB clusters tagged
 * for a namespace, reading their status, and stopping again what was left behind by a
 * deleted namespace. The inventory says which resources to look at; each action still
 * describes them by id first, so it acts on their current tags and state.
 *
 * Every action is idempotent: a resource already at (or moving to) its target counts as
 * done, so Temporal may retry any of them. What AWS can never do (stop a read replica,
 * ...) is reported, not thrown.
 */
import { CreateTagsCommand, DeleteTagsCommand, StartInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import {
  AddTagsToResourceCommand,
  RemoveTagsFromResourceCommand,
  StartDBClusterCommand,
  StartDBInstanceCommand,
  StopDBClusterCommand,
  StopDBInstanceCommand,
} from '@aws-sdk/client-rds';
import pLimit from 'p-limit';
import type {
  AwsActionReport,
  AwsLookupSource,
  AwsOutcome,
  AwsResourceKind,
  AwsResourceResult,
  AwsStatus,
  OrphanReport,
  StartOptions,
} from '../contracts';
import type { Inventory, InventoryItem } from './inventory';
import {
  byResource,
  NAMESPACE_TAG,
  pick,
  resourceKey,
  SCHEDULER_TAG,
  STOPPED_TAG,
  type LiveResource,
  type ResourceLister,
} from './resources';
import {
  errorName,
  heartbeat,
  INSUFFICIENT_CAPACITY,
  isThrottling,
  NOT_FOUND,
  notAllowedIsFinal,
  UNSUPPORTED,
  type AwsClients,
  type AwsSettings,
} from './sdk';

export type Action = 'stop' | 'start';

/** Per resource calls in flight at once: enough to be quick, few enough to stay under API rate limits. */
const CONCURRENCY = 4;
/** Outcomes that leave the resource where it was asked to be (or, for `gone`, nothing left to act on). */
const DONE: ReadonlySet<AwsOutcome> = new Set(['changed', 'already', 'excluded', 'gone', 'dry-run']);
const CAPACITY_RETRY_DELAYS_MS = [20_000, 60_000];

export interface AwsActions {
  stop(namespace: string, options?: Pick<StartOptions, 'followUp'>): Promise<AwsActionReport>;
  start(namespace: string, options?: StartOptions): Promise<AwsActionReport>;
  status(namespace: string): Promise<AwsStatus>;
  /** See AwsActivities.restopOrphanedAwsResources. */
  restopOrphans(environments: string[], existingNamespaces?: string[]): Promise<OrphanReport>;
}

export function createAwsActions(
  settings: Pick<AwsSettings, 'regions' | 'dryRun' | 'logger' | 'capacityRetryDelaysMs' | 'shareLiveListings' | 'outcomes'> & {
    now: () => Date;
  },
  clients: AwsClients,
  lister: ResourceLister,
  inventory: Inventory,
): AwsActions {
  const { regions, dryRun, logger, now } = settings;
  const { ec2, rds } = clients;
  const capacityRetryDelaysMs = settings.capacityRetryDelaysMs ?? CAPACITY_RETRY_DELAYS_MS;
  const shareLiveListings = settings.shareLiveListings ?? true;
  /** Per region, the live listing in flight, which every environment that needs one meanwhile joins. */
  const liveListings = new Map<string, Promise<LiveResource[]>>();

  /**
   * Every resource of the region tagged for some namespace. When the inventory is stale at
   * 19:00 every environment needs this at once: they share one listing (and its pages)
   * instead of each listing every RDS instance and cluster of every region itself. Only a
   * listing still in flight is shared: a finished one would miss what was tagged since.
   */
  function sharedLiveListing(region: string): Promise<LiveResource[]> {
    const listRegionNow = () => lister.listRegion(region, [{ Name: 'tag-key', Values: [NAMESPACE_TAG] }], (tags) => NAMESPACE_TAG in tags);
    if (!shareLiveListings) return listRegionNow();
    const inFlight = liveListings.get(region);
    if (inFlight) return inFlight;
    const listing = listRegionNow();
    liveListings.set(region, listing);
    const settled = () => {
      if (liveListings.get(region) === listing) liveListings.delete(region);
    };
    listing.then(settled, settled);
    return listing;
  }

  /** Every resource tagged for the namespace (whatever its `scheduler` tag), current as of now. */
  async function lookup(
    namespace: string,
  ): Promise<{ source: AwsLookupSource; found: LiveResource[]; gone: InventoryItem[]; notes: string[] }> {
    const cached = await inventory.read(namespace);
    if ('items' in cached) {
      const { found, gone } = await lister.describe(cached.items);
      // Retagged since the last refresh: it belongs to someone else now.
      return { source: 'cache', found: found.filter((f) => f.tags[NAMESPACE_TAG] === namespace), gone, notes: [] };
    }
    const listed = (await Promise.all(regions.map(sharedLiveListing))).flat().filter((f) => f.tags[NAMESPACE_TAG] === namespace);
    // The shared listing may be a minute old: act on what each resource is now.
    const { found } = await lister.describe(listed.map((f) => ({ ...f, resource: resourceKey(f) })));
    return { source: 'live', found: found.filter((f) => f.tags[NAMESPACE_TAG] === namespace), gone: [], notes: [cached.problem] };
  }

  async function act(namespace: string, action: Action, options: StartOptions = {}): Promise<AwsActionReport> {
    const startedAt = Date.now();
    const { source, found, gone, notes } = await lookup(namespace);
    const enabled = found.filter((f) => f.scheduler === 'enabled');
    const enabledClusters = new Set(enabled.filter((f) => f.kind === 'rds-cluster').map((f) => `${f.region}/${f.id}`));
    const limit = pLimit(CONCURRENCY);
    const results = await Promise.all(found.map((resource) => limit(() => actOn(resource, action, enabledClusters, options))));
    for (const item of gone)
      results.push({ ...pick(item), outcome: 'gone', before: item.state, after: 'gone', detail: 'in the inventory but no longer in AWS' });
    results.sort(byResource);
    const counts = countOutcomes(results);
    for (const [outcome, count] of Object.entries(counts)) {
      if (!DONE.has(outcome as AwsOutcome) && !(options.followUp && outcome === 'busy')) settings.outcomes?.inc({ action, outcome }, count);
    }
    logger.info({ namespace, action, source, dryRun, ...counts }, `AWS ${action} done`);
    return { namespace, action, source, resources: results, notes, durationMs: Date.now() - startedAt };
  }

  async function actOn(
    resource: LiveResource,
    action: Action,
    enabledClusters: Set<string>,
    options: StartOptions,
  ): Promise<AwsResourceResult> {
    const result = (outcome: AwsOutcome, detail?: string, after = resource.state): AwsResourceResult => ({
      ...pick(resource),
      outcome,
      before: resource.state,
      after,
      ...(detail ? { detail } : {}),
    });
    if (resource.scheduler !== 'enabled')
      return result('excluded', `tagged ${SCHEDULER_TAG}=${resource.scheduler ?? '(none)'}, not enabled`);
    if (resource.cluster) {
      return enabledClusters.has(`${resource.region}/${resource.cluster}`)
        ? result('excluded', `${action}s with its Aurora cluster ${resource.cluster}`)
        : result(
            'unsupported',
            `member of Aurora cluster ${resource.cluster}, which is not tagged for this environment: tag the cluster instead`,
          );
    }
    if (resource.unsupported) return result('unsupported', resource.unsupported);
    const stoppedByUs = resource.tags[STOPPED_TAG] !== undefined;
    if (
      action === 'start' &&
      options.onlyStoppedByScheduler &&
      !stoppedByUs &&
      (resource.state === 'stopped' || resource.state === 'stopping')
    ) {
      return result('excluded', `${resource.state} by someone else before the environment's stop: left as it is`);
    }
    const plan = planFor(resource.kind, resource.state, action);
    if (plan === 'busy') return result('busy', `${resource.state}: cannot ${action} until that finishes`);
    if (plan === 'failed') return result('failed', `RDS reports ${resource.state}`);
    if (plan === 'already' && action === 'start' && stoppedByUs && !dryRun)
      await unmark(resource).catch((err: unknown) => warnUnmarked(resource, err));
    if (plan !== 'act') return result(plan);
    if (dryRun) return result('dry-run', `would ${action}`);
    try {
      // Recorded first, so a crash between the two never leaves a resource stopped that no start would start.
      if (action === 'stop' && !stoppedByUs) await mark(resource);
      const after = await callWithCapacityRetries(resource, action, options.followUp ? [] : capacityRetryDelaysMs);
      if (action === 'start' && stoppedByUs) await unmark(resource).catch((err: unknown) => warnUnmarked(resource, err));
      return result('changed', undefined, after);
    } catch (err) {
      const name = errorName(err);
      // Still throttled after the SDK's own retries: let Temporal retry the activity later.
      if (isThrottling(err)) throw err;
      if (NOT_FOUND.has(name)) return result('gone', `${name}: ${(err as Error).message}`, 'gone');
      if (name === 'IncorrectInstanceState') return result('busy', (err as Error).message);
      if (UNSUPPORTED.has(name)) return result('unsupported', `${name}: ${(err as Error).message}`);
      if (name === INSUFFICIENT_CAPACITY) {
        const tries = options.followUp ? 'tried again at each look' : `tried ${capacityRetryDelaysMs.length + 1} times`;
        return result('failed', `${name}: ${(err as Error).message} (${tries}; start it again later, or change its instance type)`);
      }
      // AWS refused for good (access denied, ...): report it; a retry would fail the same way.
      if ((err as { $fault?: string }).$fault === 'client') {
        logger.warn({ resource: resourceKey(resource), action, err }, 'AWS refused');
        return result('failed', `${name}: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  /** An EC2 start AWS refuses for want of capacity is tried a few more times, then given up. */
  async function callWithCapacityRetries(resource: LiveResource, action: Action, delaysMs: number[]): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call(resource, action);
      } catch (err) {
        const delay = delaysMs[attempt];
        if (errorName(err) !== INSUFFICIENT_CAPACITY || delay === undefined) throw err;
        logger.warn({ resource: resourceKey(resource), attempt: attempt + 1, err }, 'EC2 has no capacity for this start; trying again');
        await sleep(delay);
        heartbeat();
      }
    }
  }

  async function mark(resource: LiveResource): Promise<void> {
    const value = now().toISOString();
    try {
      if (resource.kind === 'ec2-instance') {
        await ec2(resource.region).send(new CreateTagsCommand({ Resources: [resource.id], Tags: [{ Key: STOPPED_TAG, Value: value }] }));
      } else {
        await rds(resource.region).send(
          new AddTagsToResourceCommand({ ResourceName: resource.arn, Tags: [{ Key: STOPPED_TAG, Value: value }] }),
        );
      }
    } catch (err) {
      if (isThrottling(err) || (err as { $fault?: string }).$fault !== 'client') throw err;
      // Not stopped: stopping what no start would start again is worse than leaving it up, loudly.
      const failure = new Error(
        `could not record that the environment's stop stops it (tag ${STOPPED_TAG}), so it was not stopped: ${errorName(err)}: ${(err as Error).message}`,
      );
      Object.assign(failure, { name: errorName(err), $fault: 'client' });
      throw failure;
    }
  }

  async function unmark(resource: LiveResource): Promise<void> {
    if (resource.kind === 'ec2-instance') {
      await ec2(resource.region).send(new DeleteTagsCommand({ Resources: [resource.id], Tags: [{ Key: STOPPED_TAG }] }));
    } else {
      await rds(resource.region).send(new RemoveTagsFromResourceCommand({ ResourceName: resource.arn, TagKeys: [STOPPED_TAG] }));
    }
  }

  function warnUnmarked(resource: LiveResource, err: unknown): void {
    logger.warn(
      { resource: resourceKey(resource), tag: STOPPED_TAG, err },
      'started, but could not remove the stopped-by-the-environment tag',
    );
  }

  /** Makes the stop/start call; returns the state AWS reports afterwards. */
  async function call(resource: LiveResource, action: Action): Promise<string> {
    const { region, id } = resource;
    switch (resource.kind) {
      case 'ec2-instance': {
        if (action === 'stop') {
          const out = await ec2(region).send(new StopInstancesCommand({ InstanceIds: [id] }));
          return out.StoppingInstances?.[0]?.CurrentState?.Name ?? 'stopping';
        }
        const out = await ec2(region).send(new StartInstancesCommand({ InstanceIds: [id] }));
        return out.StartingInstances?.[0]?.CurrentState?.Name ?? 'pending';
      }
      case 'rds-instance': {
        const command =
          action === 'stop'
            ? new StopDBInstanceCommand({ DBInstanceIdentifier: id })
            : new StartDBInstanceCommand({ DBInstanceIdentifier: id });
        const out = await rds(region).send(command);
        return out.DBInstance?.DBInstanceStatus ?? (action === 'stop' ? 'stopping' : 'starting');
      }
      case 'rds-cluster': {
        const command =
          action === 'stop'
            ? new StopDBClusterCommand({ DBClusterIdentifier: id })
            : new StartDBClusterCommand({ DBClusterIdentifier: id });
        const out = await rds(region).send(command);
        return out.DBCluster?.Status ?? (action === 'stop' ? 'stopping' : 'starting');
      }
    }
  }

  /** An action that could not run at all (AWS refused the listing, ...) counts as an `error` outcome. */
  async function counted<T>(action: Action, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      settings.outcomes?.inc({ action, outcome: 'error' });
      throw err;
    }
  }

  return {
    stop: (namespace, options) =>
      counted('stop', () => notAllowedIsFinal(`list the resources of ${namespace}`, () => act(namespace, 'stop', options))),
    start: (namespace, options) =>
      counted('start', () => notAllowedIsFinal(`list the resources of ${namespace}`, () => act(namespace, 'start', options))),

    async status(namespace) {
      const { source, found, notes } = await notAllowedIsFinal(`list the resources of ${namespace}`, () => lookup(namespace));
      const resources = found
        .map(({ tags, arn: _arn, ...resource }) => ({
          ...resource,
          ...(tags[STOPPED_TAG] !== undefined ? { stoppedAt: tags[STOPPED_TAG] } : {}),
        }))
        .sort(byResource);
      return { namespace, source, resources, notes };
    },

    async restopOrphans(environments, existingNamespaces) {
      const known = new Set(environments);
      const existing = new Set(existingNamespaces ?? []);
      const deleted = (namespace: string | undefined) =>
        existingNamespaces !== undefined && namespace !== undefined && !existing.has(namespace);
      const orphans = (await inventory.scan()).filter((item) => !known.has(item.namespace));
      const { found } = await lister.describe(orphans);
      const byKey = new Map(orphans.map((item) => [item.resource, item.namespace]));
      // Only what the environment's own stop stopped is stopped again: nobody is left to ask about the rest.
      const ours = found.filter(
        (f) =>
          f.tags[NAMESPACE_TAG] === byKey.get(resourceKey(f)) &&
          deleted(f.tags[NAMESPACE_TAG]) &&
          f.tags[STOPPED_TAG] !== undefined &&
          f.scheduler === 'enabled',
      );
      const limit = pLimit(CONCURRENCY);
      const restopped = await Promise.all(ours.map((resource) => limit(() => actOn(resource, 'stop', new Set(), {}))));
      const outcomeOf = new Map(restopped.map((r) => [`${r.region}/${r.kind}/${r.id}`, r]));
      const resources = found
        .filter((f) => f.tags[NAMESPACE_TAG] === byKey.get(resourceKey(f)))
        .map(({ tags, arn: _arn, ...resource }) => {
          const acted = outcomeOf.get(resourceKey(resource));
          const namespace = tags[NAMESPACE_TAG]!;
          return {
            ...resource,
            namespace,
            stoppedByScheduler: tags[STOPPED_TAG] !== undefined,
            ...(existingNamespaces !== undefined ? { namespaceExists: existing.has(namespace) } : {}),
            ...(acted ? { outcome: acted.outcome, after: acted.after } : {}),
          };
        })
        .sort(byResource);
      const report: OrphanReport = { resources, restopped: restopped.filter((r) => r.outcome === 'changed').length };
      if (resources.length > 0) {
        logger.warn(
          {
            resources: resources.map((r) => `${r.namespace} ${resourceKey(r)} ${r.state}${r.outcome ? ` ${r.outcome}` : ''}`),
            restopped: report.restopped,
          },
          'AWS resources still tagged for namespaces that have no environment',
        );
      }
      return report;
    },
  };
}

/** What to do with a resource in `state` to reach the action's target state. */
function planFor(kind: AwsResourceKind, state: string, action: Action): 'act' | 'already' | 'busy' | 'gone' | 'failed' {
  if (kind === 'ec2-instance') {
    if (state === 'shutting-down' || state === 'terminated') return 'gone';
    if (action === 'stop') return state === 'running' ? 'act' : state === 'stopping' || state === 'stopped' ? 'already' : 'busy';
    return state === 'stopped' ? 'act' : state === 'pending' || state === 'running' ? 'already' : 'busy';
  }
  if (state === 'deleting') return 'gone';
  if (/^(failed|incompatible-|inaccessible-|storage-full)/.test(state)) return 'failed';
  if (action === 'stop') return state === 'available' ? 'act' : state === 'stopping' || state === 'stopped' ? 'already' : 'busy';
  // Any other RDS state (backing-up, modifying, ...) is a running database.
  return state === 'stopped' ? 'act' : state === 'stopping' ? 'busy' : 'already';
}

function countOutcomes(results: AwsResourceResult[]): Partial<Record<AwsOutcome, number>> {
  const counts: Partial<Record<AwsOutcome, number>> = {};
  for (const { outcome } of results) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
