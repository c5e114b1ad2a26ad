/**
 * EC2 instances, RDS DB instances and Aurora DB clusters that follow an environment: those
 * tagged `namespace=<ns>` and `scheduler=enabled`. A DynamoDB inventory, refreshed on a
 * Schedule, says which resources belong to which namespace so a stop at 19:00 does not
 * list every resource of every region for every environment at once; each action still
 * describes the listed resources by id first, so it acts on their current tags and state.
 *
 * Every activity is idempotent: a resource already at (or moving to) its target counts as
 * done, so Temporal may retry any of them. Throttling is retried by the SDK (adaptive mode:
 * backoff plus client-side rate limiting) and then, if it persists, by Temporal's activity
 * retry. What AWS can never do (stop a read replica, ...) is reported, not thrown.
 */
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  EC2Client,
  paginateDescribeInstances,
  StartInstancesCommand,
  StopInstancesCommand,
  type Filter,
  type Instance,
  type Tag as Ec2Tag,
} from '@aws-sdk/client-ec2';
import {
  AddTagsToResourceCommand,
  paginateDescribeDBClusters,
  paginateDescribeDBInstances,
  RDSClient,
  RemoveTagsFromResourceCommand,
  StartDBClusterCommand,
  StartDBInstanceCommand,
  StopDBClusterCommand,
  StopDBInstanceCommand,
  type DBCluster,
  type DBInstance,
  type Tag as RdsTag,
} from '@aws-sdk/client-rds';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, waitUntilTableExists, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, paginateQuery, paginateScan } from '@aws-sdk/lib-dynamodb';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import pLimit from 'p-limit';
import type { Counter } from 'prom-client';
import type { Logger } from '../logger';
import { holdUntil } from './timing';
import type {
  AwsActionReport,
  AwsActivities,
  AwsLookupSource,
  AwsOutcome,
  AwsResource,
  AwsResourceKind,
  AwsResourceResult,
  AwsStatus,
  InventoryReport,
  OrphanReport,
  StartOptions,
} from './contracts';

export const NAMESPACE_TAG = 'namespace';
export const SCHEDULER_TAG = 'scheduler';
/**
 * Written on a resource just before the environment's stop stops it (value: when), removed
 * once a start has started it again: what a start starts, like the saved replica counts of
 * the Kubernetes half. A resource someone had stopped before never gets it.
 */
export const STOPPED_TAG = 'devenv-scheduler/stopped-at';
/** EC2 puts it on every member of an Auto Scaling group. */
const ASG_TAG = 'aws:autoscaling:groupName';

export interface AwsSettings {
  /** Regions whose resources follow environments (AWS_REGIONS). */
  regions: string[];
  /** One endpoint for EC2, RDS and DynamoDB, e.g. moto or LocalStack (AWS_ENDPOINT_URL); unset for AWS itself. */
  endpoint?: string;
  /** The inventory table (INVENTORY_TABLE). */
  tableName: string;
  /** Where the table lives (INVENTORY_TABLE_REGION); defaults to the first of `regions`. */
  tableRegion?: string;
  /** An inventory older than this is not trusted: stop/start/status list live instead (INVENTORY_MAX_AGE). */
  cacheMaxAgeMs: number;
  /** Log and report what would change, change nothing (DRY_RUN). */
  dryRun: boolean;
  logger: Logger;
  /** Only for tests against moto; production uses the SDK's default credential chain. */
  credentials?: DynamoDBClientConfig['credentials'];
  /** SDK attempts per call, throttling included (default 8). */
  maxAttempts?: number;
  /** Page sizes; tests make them small to prove pagination. */
  pageSize?: { ec2?: number; rds?: number };
  /** Waits before trying an EC2 start again that AWS refused for want of capacity; after the last, it is reported failed. */
  capacityRetryDelaysMs?: number[];
  /**
   * Whether environments that need a live listing of a region (the inventory is stale) while
   * one is in flight join it (default true); each still describes its own resources by id afterwards.
   */
  shareLiveListings?: boolean;
  /** Counts every AWS outcome other than done, by action and outcome (devenv_aws_outcomes_total). */
  outcomes?: Counter<'action' | 'outcome'>;
  now?: () => Date;
}

export interface AwsSetup {
  /**
   * Checks that the inventory table exists with the expected key; with `create`, creates it
   * (on-demand billing) and waits until it is active.
   */
  ensureInventoryTable(options?: { create?: boolean }): Promise<'exists' | 'created' | 'disabled'>;
}

/** Key attributes of the inventory table: one partition per namespace, one item per resource. */
const PARTITION_KEY = 'namespace';
const SORT_KEY = 'resource';
/** Kubernetes namespace names cannot contain `_`, so this partition never collides with one. */
const REFRESH_PARTITION = '_inventory';

interface InventoryItem {
  namespace: string;
  /** `<region>/<kind>/<id>` */
  resource: string;
  kind: AwsResourceKind;
  id: string;
  region: string;
  name?: string;
  state: string;
  scheduler: string | null;
  unsupported?: string;
  cluster?: string;
  /** The STOPPED_TAG's value: the environment's stop stopped it. */
  stoppedAt?: string;
  lastSeen: string;
}

/** A resource as AWS describes it right now. */
interface Found extends AwsResource {
  tags: Record<string, string>;
  /** RDS resources are tagged by ARN. */
  arn?: string;
}

type Action = 'stop' | 'start';

const LIVE_EC2_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];
const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'ProvisionedThroughputExceededException', 'RequestThrottled']);
const NOT_FOUND = new Set(['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed', 'DBInstanceNotFound', 'DBInstanceNotFoundFault', 'DBClusterNotFoundFault']);
/**
 * AWS gives the same answer however often it is asked: credentials missing, wrong or
 * expired, or the action not allowed. Retrying only delays telling someone.
 */
const NOT_ALLOWED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'AuthFailure',
  'AuthorizationError',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'OptInRequired',
  'CredentialsProviderError',
]);
/** Refusals that mean "not in this configuration", e.g. a one-time Spot instance, a global cluster member. */
const INSUFFICIENT_CAPACITY = 'InsufficientInstanceCapacity';
const UNSUPPORTED = new Set(['UnsupportedOperation', 'InvalidParameterCombination', 'InvalidDBClusterStateFault', 'InvalidDBInstanceState', 'InvalidDBInstanceStateFault']);
/** Per resource calls in flight at once: enough to be quick, few enough to stay under API rate limits. */
const CONCURRENCY = 4;
const FILTER_CHUNK = 100;
/** Inventory writes in flight at once; each is conditional, so one at a time per item. */
const WRITE_CONCURRENCY = 8;
/** Outcomes that leave the resource where it was asked to be (or, for `gone`, nothing left to act on). */
const DONE: ReadonlySet<AwsOutcome> = new Set(['changed', 'already', 'excluded', 'gone', 'dry-run']);
const CAPACITY_RETRY_DELAYS_MS = [20_000, 60_000];

export function createAwsActivities(settings: AwsSettings): AwsActivities & AwsSetup {
  const { regions, tableName, dryRun, logger } = settings;
  const tableRegion = settings.tableRegion ?? regions[0];
  if (regions.length === 0 || !tableRegion) return withoutAws();
  const now = settings.now ?? (() => new Date());
  const clientConfig = (region: string) => ({
    region,
    endpoint: settings.endpoint,
    credentials: settings.credentials,
    maxAttempts: settings.maxAttempts ?? 8,
    retryMode: 'adaptive' as const,
  });
  const ec2Clients = new Map<string, EC2Client>();
  const rdsClients = new Map<string, RDSClient>();
  const ec2 = (region: string) => cached(ec2Clients, region, () => new EC2Client(clientConfig(region)));
  const rds = (region: string) => cached(rdsClients, region, () => new RDSClient(clientConfig(region)));
  const dynamo = new DynamoDBClient(clientConfig(tableRegion));
  const table = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
  const ec2PageSize = settings.pageSize?.ec2 ?? 1000;
  const rdsPageSize = settings.pageSize?.rds ?? 100;
  const capacityRetryDelaysMs = settings.capacityRetryDelaysMs ?? CAPACITY_RETRY_DELAYS_MS;
  const shareLiveListings = settings.shareLiveListings ?? true;
  /** Per region, the live listing in flight, which every environment that needs one meanwhile joins. */
  const liveListings = new Map<string, Promise<Found[]>>();

  const missingTable = () =>
    ApplicationFailure.nonRetryable(
      `DynamoDB table "${tableName}" does not exist in ${tableRegion}${settings.endpoint ? ` at ${settings.endpoint}` : ''}: ` +
        'set INVENTORY_TABLE (and INVENTORY_TABLE_REGION) to an existing table, or create it with the AWS setup command (docs/aws.md)',
      'InventoryTableMissing',
    );

  /** Lists one region; `ec2Filters` narrow EC2 server-side, `keep` filters all three kinds by tag. */
  async function listRegion(region: string, ec2Filters: Filter[], keep: (tags: Record<string, string>) => boolean): Promise<Found[]> {
    const [instances, dbInstances, clusters] = await Promise.all([
      describeEc2(region, [...ec2Filters, { Name: 'instance-state-name', Values: LIVE_EC2_STATES }]),
      describeDbInstances(region),
      describeDbClusters(region),
    ]);
    return [...instances, ...dbInstances, ...clusters].filter((found) => keep(found.tags));
  }

  async function describeEc2(region: string, filters: Filter[]): Promise<Found[]> {
    const found: Found[] = [];
    for await (const page of paginateDescribeInstances({ client: ec2(region), pageSize: ec2PageSize }, { Filters: filters })) {
      heartbeat();
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) found.push(fromEc2(instance, region));
      }
    }
    return found;
  }

  async function describeDbInstances(region: string, ids?: string[]): Promise<Found[]> {
    const found: Found[] = [];
    const filters = ids ? [{ Name: 'db-instance-id', Values: ids }] : undefined;
    for await (const page of paginateDescribeDBInstances({ client: rds(region), pageSize: rdsPageSize }, { Filters: filters })) {
      heartbeat();
      for (const db of page.DBInstances ?? []) found.push(fromDbInstance(db, region));
    }
    return found;
  }

  async function describeDbClusters(region: string, ids?: string[]): Promise<Found[]> {
    const found: Found[] = [];
    const filters = ids ? [{ Name: 'db-cluster-id', Values: ids }] : undefined;
    for await (const page of paginateDescribeDBClusters({ client: rds(region), pageSize: rdsPageSize }, { Filters: filters })) {
      heartbeat();
      for (const cluster of page.DBClusters ?? []) found.push(fromDbCluster(cluster, region));
    }
    return found;
  }

  /** Current description of inventory entries, by id; entries AWS no longer knows are returned as `gone`. */
  async function describeItems<T extends Pick<InventoryItem, 'resource' | 'region' | 'kind' | 'id'>>(items: T[]): Promise<{ found: Found[]; gone: T[] }> {
    const found: Found[] = [];
    const groups = new Map<string, T[]>();
    for (const item of items) cached(groups, `${item.region}/${item.kind}`, () => []).push(item);
    await Promise.all(
      [...groups.values()].flatMap((group) =>
        chunks(group, FILTER_CHUNK).map(async (chunk) => {
          const { region, kind } = chunk[0]!;
          const ids = chunk.map((item) => item.id);
          const described =
            kind === 'ec2-instance'
              ? await describeEc2(region, [{ Name: 'instance-id', Values: ids }, { Name: 'instance-state-name', Values: LIVE_EC2_STATES }])
              : kind === 'rds-instance'
                ? await describeDbInstances(region, ids)
                : await describeDbClusters(region, ids);
          found.push(...described);
        }),
      ),
    );
    const present = new Set(found.map(resourceKey));
    return { found, gone: items.filter((item) => !present.has(item.resource)) };
  }

  /** The inventory's entries for a namespace, or why they cannot be trusted. */
  async function readInventory(namespace: string): Promise<{ items: InventoryItem[] } | { problem: string }> {
    try {
      const refreshed = await Promise.all(
        regions.map(async (region) => {
          const { Item } = await table.send(new GetCommand({ TableName: tableName, Key: { [PARTITION_KEY]: REFRESH_PARTITION, [SORT_KEY]: region } }));
          return typeof Item?.refreshedAt === 'string' ? Date.parse(Item.refreshedAt) : undefined;
        }),
      );
      const oldest = Math.min(...refreshed.map((at) => at ?? -Infinity));
      if (oldest === -Infinity) return { problem: 'inventory never refreshed for every region: listed live' };
      const ageMs = now().getTime() - oldest;
      if (ageMs > settings.cacheMaxAgeMs) return { problem: `inventory is ${Math.round(ageMs / 60_000)} minutes old: listed live` };
      const items: InventoryItem[] = [];
      const pages = paginateQuery(
        { client: table },
        { TableName: tableName, KeyConditionExpression: '#ns = :ns', ExpressionAttributeNames: { '#ns': PARTITION_KEY }, ExpressionAttributeValues: { ':ns': namespace } },
      );
      for await (const page of pages) items.push(...((page.Items ?? []) as InventoryItem[]));
      return { items };
    } catch (err) {
      // Stopping an environment must not depend on the cache: say why, and list live.
      const problem = errorName(err) === 'ResourceNotFoundException' ? missingTable().message : `inventory unreadable (${errorName(err)}: ${(err as Error).message})`;
      logger.warn({ namespace, table: tableName, err }, 'AWS inventory not usable, listing live');
      return { problem: `${problem}; listed live` };
    }
  }

  /**
   * Every resource of the region tagged for some namespace. When the inventory is stale at
   * 19:00 every environment needs this at once: they share one listing (and its pages)
   * instead of each listing every RDS instance and cluster of every region itself. Only a
   * listing still in flight is shared: a finished one would miss what was tagged since.
   */
  function sharedLiveListing(region: string): Promise<Found[]> {
    const listRegionNow = () => listRegion(region, [{ Name: 'tag-key', Values: [NAMESPACE_TAG] }], (tags) => NAMESPACE_TAG in tags);
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
  async function lookup(namespace: string): Promise<{ source: AwsLookupSource; found: Found[]; gone: InventoryItem[]; notes: string[] }> {
    const inventory = await readInventory(namespace);
    if ('items' in inventory) {
      const { found, gone } = await describeItems(inventory.items);
      // Retagged since the last refresh: it belongs to someone else now.
      return { source: 'cache', found: found.filter((f) => f.tags[NAMESPACE_TAG] === namespace), gone, notes: [] };
    }
    const listed = (await Promise.all(regions.map(sharedLiveListing))).flat().filter((f) => f.tags[NAMESPACE_TAG] === namespace);
    // The shared listing may be a minute old: act on what each resource is now.
    const { found } = await describeItems(listed.map((f) => ({ ...f, resource: resourceKey(f) })));
    return { source: 'live', found: found.filter((f) => f.tags[NAMESPACE_TAG] === namespace), gone: [], notes: [inventory.problem] };
  }

  async function act(namespace: string, action: Action, options: StartOptions = {}): Promise<AwsActionReport> {
    const startedAt = Date.now();
    const { source, found, gone, notes } = await lookup(namespace);
    const enabled = found.filter((f) => f.scheduler === 'enabled');
    const enabledClusters = new Set(enabled.filter((f) => f.kind === 'rds-cluster').map((f) => `${f.region}/${f.id}`));
    const limit = pLimit(CONCURRENCY);
    const results = await Promise.all(found.map((resource) => limit(() => actOn(resource, action, enabledClusters, options))));
    for (const item of gone) results.push({ ...pick(item), outcome: 'gone', before: item.state, after: 'gone', detail: 'in the inventory but no longer in AWS' });
    results.sort(byResource);
    const counts = countOutcomes(results);
    for (const [outcome, count] of Object.entries(counts)) {
      if (!DONE.has(outcome as AwsOutcome) && !(options.followUp && outcome === 'busy')) settings.outcomes?.inc({ action, outcome }, count);
    }
    logger.info({ namespace, action, source, dryRun, ...counts }, `AWS ${action} done`);
    return { namespace, action, source, resources: results, notes, durationMs: Date.now() - startedAt };
  }

  async function actOn(resource: Found, action: Action, enabledClusters: Set<string>, options: StartOptions): Promise<AwsResourceResult> {
    const result = (outcome: AwsOutcome, detail?: string, after = resource.state): AwsResourceResult => ({
      ...pick(resource),
      outcome,
      before: resource.state,
      after,
      ...(detail ? { detail } : {}),
    });
    if (resource.scheduler !== 'enabled') return result('excluded', `tagged ${SCHEDULER_TAG}=${resource.scheduler ?? '(none)'}, not enabled`);
    if (resource.cluster) {
      return enabledClusters.has(`${resource.region}/${resource.cluster}`)
        ? result('excluded', `${action}s with its Aurora cluster ${resource.cluster}`)
        : result('unsupported', `member of Aurora cluster ${resource.cluster}, which is not tagged for this environment: tag the cluster instead`);
    }
    if (resource.unsupported) return result('unsupported', resource.unsupported);
    const stoppedByUs = resource.tags[STOPPED_TAG] !== undefined;
    if (action === 'start' && options.onlyStoppedByScheduler && !stoppedByUs && (resource.state === 'stopped' || resource.state === 'stopping')) {
      return result('excluded', `${resource.state} by someone else before the environment's stop: left as it is`);
    }
    const plan = planFor(resource.kind, resource.state, action);
    if (plan === 'busy') return result('busy', `${resource.state}: cannot ${action} until that finishes`);
    if (plan === 'failed') return result('failed', `RDS reports ${resource.state}`);
    if (plan === 'already' && action === 'start' && stoppedByUs && !dryRun) await unmark(resource).catch((err: unknown) => warnUnmarked(resource, err));
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
  async function callWithCapacityRetries(resource: Found, action: Action, delaysMs: number[]): Promise<string> {
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

  async function mark(resource: Found): Promise<void> {
    const value = now().toISOString();
    try {
      if (resource.kind === 'ec2-instance') {
        await ec2(resource.region).send(new CreateTagsCommand({ Resources: [resource.id], Tags: [{ Key: STOPPED_TAG, Value: value }] }));
      } else {
        await rds(resource.region).send(new AddTagsToResourceCommand({ ResourceName: resource.arn, Tags: [{ Key: STOPPED_TAG, Value: value }] }));
      }
    } catch (err) {
      if (isThrottling(err) || (err as { $fault?: string }).$fault !== 'client') throw err;
      // Not stopped: stopping what no start would start again is worse than leaving it up, loudly.
      const failure = new Error(`could not record that the environment's stop stops it (tag ${STOPPED_TAG}), so it was not stopped: ${errorName(err)}: ${(err as Error).message}`);
      Object.assign(failure, { name: errorName(err), $fault: 'client' });
      throw failure;
    }
  }

  async function unmark(resource: Found): Promise<void> {
    if (resource.kind === 'ec2-instance') {
      await ec2(resource.region).send(new DeleteTagsCommand({ Resources: [resource.id], Tags: [{ Key: STOPPED_TAG }] }));
    } else {
      await rds(resource.region).send(new RemoveTagsFromResourceCommand({ ResourceName: resource.arn, TagKeys: [STOPPED_TAG] }));
    }
  }

  function warnUnmarked(resource: Found, err: unknown): void {
    logger.warn({ resource: resourceKey(resource), tag: STOPPED_TAG, err }, 'started, but could not remove the stopped-by-the-environment tag');
  }

  /** Makes the stop/start call; returns the state AWS reports afterwards. */
  async function call(resource: Found, action: Action): Promise<string> {
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
        const command = action === 'stop' ? new StopDBInstanceCommand({ DBInstanceIdentifier: id }) : new StartDBInstanceCommand({ DBInstanceIdentifier: id });
        const out = await rds(region).send(command);
        return out.DBInstance?.DBInstanceStatus ?? (action === 'stop' ? 'stopping' : 'starting');
      }
      case 'rds-cluster': {
        const command = action === 'stop' ? new StopDBClusterCommand({ DBClusterIdentifier: id }) : new StartDBClusterCommand({ DBClusterIdentifier: id });
        const out = await rds(region).send(command);
        return out.DBCluster?.Status ?? (action === 'stop' ? 'stopping' : 'starting');
      }
    }
  }

  /**
   * Writes an item unless a newer refresh already wrote it (its `lastSeen`, or for a region
   * its `refreshedAt`, is later): an attempt that timed out and still runs beside its retry
   * can never overwrite what the retry wrote. False when it was newer.
   */
  async function putIfNotNewer(item: Record<string, unknown>, stamp: 'lastSeen' | 'refreshedAt'): Promise<boolean> {
    try {
      await table.send(
        new PutCommand({
          TableName: tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#at) OR #at <= :at',
          ExpressionAttributeNames: { '#at': stamp },
          ExpressionAttributeValues: { ':at': item[stamp] },
        }),
      );
      return true;
    } catch (err) {
      if (errorName(err) === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  /**
   * Deletes an entry last seen before `seenAt` (`older`), or by this very refresh (`mine`,
   * to take back what a superseded one wrote); an entry a newer refresh wrote stays.
   */
  async function deleteEntry(key: { namespace: string; resource: string }, seenAt: string, which: 'older' | 'mine'): Promise<boolean> {
    try {
      await table.send(
        new DeleteCommand({
          TableName: tableName,
          Key: { [PARTITION_KEY]: key.namespace, [SORT_KEY]: key.resource },
          ConditionExpression: which === 'older' ? 'attribute_not_exists(lastSeen) OR lastSeen < :at' : 'lastSeen = :at',
          ExpressionAttributeValues: { ':at': seenAt },
        }),
      );
      return true;
    } catch (err) {
      if (errorName(err) === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  /** When each region was last refreshed completely (ISO), as the table has it. */
  async function refreshedAt(): Promise<(string | undefined)[]> {
    return Promise.all(
      regions.map(async (region) => {
        const { Item } = await table.send(new GetCommand({ TableName: tableName, Key: { [PARTITION_KEY]: REFRESH_PARTITION, [SORT_KEY]: region } }));
        return typeof Item?.refreshedAt === 'string' ? Item.refreshedAt : undefined;
      }),
    );
  }

  async function scanInventory(): Promise<InventoryItem[]> {
    const items: InventoryItem[] = [];
    for await (const page of paginateScan({ client: table }, { TableName: tableName })) {
      heartbeat();
      for (const item of (page.Items ?? []) as InventoryItem[]) if (item.namespace !== REFRESH_PARTITION) items.push(item);
    }
    return items;
  }

  return {
    async refreshAwsInventory(): Promise<InventoryReport> {
      const startedAt = Date.now();
      const seenAt = now().toISOString();
      const found = (await Promise.all(regions.map((region) => listRegion(region, [{ Name: 'tag-key', Values: [SCHEDULER_TAG] }], (tags) => SCHEDULER_TAG in tags)))).flat();
      const withoutNamespace = found.filter((f) => !f.tags[NAMESPACE_TAG]).map(resourceKey);
      const items: InventoryItem[] = found
        .filter((f) => f.tags[NAMESPACE_TAG])
        .map(({ tags, arn: _arn, ...resource }) => ({
          ...resource,
          namespace: tags[NAMESPACE_TAG]!,
          resource: resourceKey(resource),
          ...(tags[STOPPED_TAG] !== undefined ? { stoppedAt: tags[STOPPED_TAG] } : {}),
          lastSeen: seenAt,
        }));
      const current = new Set(items.map((item) => `${item.namespace}\u0000${item.resource}`));
      const limit = pLimit(WRITE_CONCURRENCY);
      /** A newer refresh finished first: what this one wrote from its older view is taken back, and it stops. */
      const superseded = async (wrote: boolean): Promise<InventoryReport> => {
        if (wrote) await Promise.all(items.map((item) => limit(() => deleteEntry(item, seenAt, 'mine'))));
        logger.warn({ seenAt }, 'AWS inventory refresh superseded by a newer one: left the table to it');
        return { regions, resources: 0, namespaces: 0, removed: 0, withoutNamespace, superseded: true, durationMs: Date.now() - startedAt };
      };
      const newerFinished = async () => (await refreshedAt()).some((at) => at !== undefined && at > seenAt);
      try {
        throwIfCancelled();
        if (await newerFinished()) return await superseded(false);
        await Promise.all(items.map((item) => limit(() => putIfNotNewer(item as unknown as Record<string, unknown>, 'lastSeen').finally(heartbeat))));
        throwIfCancelled();
        if (await newerFinished()) return await superseded(true);
        const stale = (await scanInventory()).filter((item) => !current.has(`${item.namespace}\u0000${item.resource}`) && !(item.lastSeen > seenAt));
        const removed = await Promise.all(stale.map((item) => limit(() => deleteEntry(item, seenAt, 'older').finally(heartbeat))));
        // Written last: only a complete refresh makes the inventory trusted.
        const marked = await Promise.all(regions.map((region) => putIfNotNewer({ [PARTITION_KEY]: REFRESH_PARTITION, [SORT_KEY]: region, refreshedAt: seenAt }, 'refreshedAt')));
        if (marked.some((written) => !written)) return await superseded(true);
        const report: InventoryReport = {
          regions,
          resources: items.length,
          namespaces: new Set(items.map((item) => item.namespace)).size,
          removed: removed.filter(Boolean).length,
          withoutNamespace,
          durationMs: Date.now() - startedAt,
        };
        logger.info({ ...report, withoutNamespace: withoutNamespace.length }, 'AWS inventory refreshed');
        if (withoutNamespace.length > 0) logger.warn({ resources: withoutNamespace }, `tagged ${SCHEDULER_TAG} but no ${NAMESPACE_TAG} tag: they follow no environment`);
        return report;
      } catch (err) {
        if (errorName(err) === 'ResourceNotFoundException') throw missingTable();
        throw err;
      }
    },

    async restopOrphanedAwsResources(environments: string[], existingNamespaces?: string[]): Promise<OrphanReport> {
      const known = new Set(environments);
      const existing = new Set(existingNamespaces ?? []);
      const deleted = (namespace: string | undefined) => existingNamespaces !== undefined && namespace !== undefined && !existing.has(namespace);
      const orphans = (await scanInventory()).filter((item) => !known.has(item.namespace));
      const { found } = await describeItems(orphans);
      const byKey = new Map(orphans.map((item) => [item.resource, item.namespace]));
      // Only what the environment's own stop stopped is stopped again: nobody is left to ask about the rest.
      const ours = found.filter((f) => f.tags[NAMESPACE_TAG] === byKey.get(resourceKey(f)) && deleted(f.tags[NAMESPACE_TAG]) && f.tags[STOPPED_TAG] !== undefined && f.scheduler === 'enabled');
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
          { resources: resources.map((r) => `${r.namespace} ${resourceKey(r)} ${r.state}${r.outcome ? ` ${r.outcome}` : ''}`), restopped: report.restopped },
          'AWS resources still tagged for namespaces that have no environment',
        );
      }
      return report;
    },

    async stopAwsResources(namespace, timing, options) {
      await holdUntil(timing);
      return counted('stop', () => notAllowedIsFinal(`list the resources of ${namespace}`, () => act(namespace, 'stop', options)));
    },
    startAwsResources: (namespace, options) => counted('start', () => notAllowedIsFinal(`list the resources of ${namespace}`, () => act(namespace, 'start', options))),

    async awsStatus(namespace: string): Promise<AwsStatus> {
      const { source, found, notes } = await notAllowedIsFinal(`list the resources of ${namespace}`, () => lookup(namespace));
      const resources = found.map(({ tags, arn: _arn, ...resource }) => ({ ...resource, ...(tags[STOPPED_TAG] !== undefined ? { stoppedAt: tags[STOPPED_TAG] } : {}) })).sort(byResource);
      return { namespace, source, resources, notes };
    },

    async ensureInventoryTable({ create = false } = {}): Promise<'exists' | 'created' | 'disabled'> {
      try {
        const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
        const keys = Object.fromEntries((Table?.KeySchema ?? []).map((k) => [k.KeyType, k.AttributeName]));
        if (keys.HASH !== PARTITION_KEY || keys.RANGE !== SORT_KEY) {
          throw new Error(`DynamoDB table "${tableName}" (INVENTORY_TABLE) has key ${JSON.stringify(keys)}; the inventory needs HASH "${PARTITION_KEY}" and RANGE "${SORT_KEY}"`);
        }
        return 'exists';
      } catch (err) {
        if (errorName(err) !== 'ResourceNotFoundException') throw err;
        if (!create) throw missingTable();
      }
      await dynamo.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [
            { AttributeName: PARTITION_KEY, AttributeType: 'S' },
            { AttributeName: SORT_KEY, AttributeType: 'S' },
          ],
          KeySchema: [
            { AttributeName: PARTITION_KEY, KeyType: 'HASH' },
            { AttributeName: SORT_KEY, KeyType: 'RANGE' },
          ],
        }),
      );
      await waitUntilTableExists({ client: dynamo, maxWaitTime: 120 }, { TableName: tableName });
      logger.info({ table: tableName, region: tableRegion }, 'created AWS inventory table');
      return 'created';
    },
  };

  /** An action that could not run at all (AWS refused the listing, ...) counts as an `error` outcome. */
  async function counted<T>(action: Action, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      settings.outcomes?.inc({ action, outcome: 'error' });
      throw err;
    }
  }
}

/** Inside an activity, tells Temporal it is alive (a refresh that stops heartbeating is retried, and this attempt learns it was cancelled). */
function heartbeat(): void {
  activityContext()?.heartbeat();
}

/** Stops an attempt Temporal has given up on (timed out, cancelled) before it writes anything more. */
function throwIfCancelled(): void {
  const signal = activityContext()?.cancellationSignal;
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new CancelledFailure(String(signal.reason ?? 'cancelled'));
}

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // called outside an activity (tests, the setup command)
  }
}

/**
 * With no region configured no AWS resource follows an environment: the activities answer
 * at once with empty reports, so the workflows call them unconditionally.
 */
function withoutAws(): AwsActivities & AwsSetup {
  const notes = ['AWS_REGIONS is not set: no EC2 or RDS resources follow environments'];
  const report = (namespace: string, action: Action): AwsActionReport => ({ namespace, action, source: 'live', resources: [], notes, durationMs: 0 });
  return {
    refreshAwsInventory: async () => ({ regions: [], resources: 0, namespaces: 0, removed: 0, withoutNamespace: [], durationMs: 0 }),
    restopOrphanedAwsResources: async () => ({ resources: [], restopped: 0 }),
    stopAwsResources: async (namespace) => report(namespace, 'stop'),
    startAwsResources: async (namespace) => report(namespace, 'start'),
    awsStatus: async (namespace) => ({ namespace, source: 'live', resources: [], notes }),
    ensureInventoryTable: async () => 'disabled',
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

function fromEc2(instance: Instance, region: string): Found {
  const tags = tagMap(instance.Tags);
  return {
    kind: 'ec2-instance',
    id: instance.InstanceId ?? '',
    region,
    ...(tags.Name ? { name: tags.Name } : {}),
    state: instance.State?.Name ?? 'unknown',
    scheduler: tags[SCHEDULER_TAG] ?? null,
    ...(tags[ASG_TAG]
      ? { unsupported: `managed by Auto Scaling group ${tags[ASG_TAG]}: the group would replace a stopped member with a running one; scale the group instead` }
      : instance.RootDeviceType === 'instance-store'
        ? { unsupported: 'instance-store root volume: EC2 cannot stop it, only terminate it' }
        : {}),
    tags,
  };
}

function fromDbInstance(db: DBInstance, region: string): Found {
  const tags = tagMap(db.TagList);
  const replicaOf = db.ReadReplicaSourceDBInstanceIdentifier ?? db.ReadReplicaSourceDBClusterIdentifier;
  const replicas = db.ReadReplicaDBInstanceIdentifiers ?? [];
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_StopInstance.html#USER_StopInstance.Limitations
  const unsupported = replicaOf
    ? `read replica of ${replicaOf}: RDS cannot stop read replicas`
    : replicas.length > 0
      ? `has read replicas (${replicas.join(', ')}): RDS cannot stop it`
      : db.MultiAZ && db.Engine?.startsWith('sqlserver')
        ? 'SQL Server in a Multi-AZ configuration: RDS cannot stop it'
        : undefined;
  return {
    kind: 'rds-instance',
    id: db.DBInstanceIdentifier ?? '',
    region,
    ...(tags.Name ? { name: tags.Name } : {}),
    state: db.DBInstanceStatus ?? 'unknown',
    scheduler: tags[SCHEDULER_TAG] ?? null,
    ...(unsupported ? { unsupported } : {}),
    ...(db.DBClusterIdentifier ? { cluster: db.DBClusterIdentifier } : {}),
    tags,
    ...(db.DBInstanceArn ? { arn: db.DBInstanceArn } : {}),
  };
}

function fromDbCluster(cluster: DBCluster, region: string): Found {
  const tags = tagMap(cluster.TagList);
  return {
    kind: 'rds-cluster',
    id: cluster.DBClusterIdentifier ?? '',
    region,
    ...(tags.Name ? { name: tags.Name } : {}),
    state: cluster.Status ?? 'unknown',
    scheduler: tags[SCHEDULER_TAG] ?? null,
    ...(cluster.EngineMode === 'serverless' ? { unsupported: 'Aurora Serverless v1: RDS cannot stop it (it pauses itself when idle)' } : {}),
    tags,
    ...(cluster.DBClusterArn ? { arn: cluster.DBClusterArn } : {}),
  };
}

function tagMap(tags: (Ec2Tag | RdsTag)[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

const resourceKey = (r: { region: string; kind: AwsResourceKind; id: string }): string => `${r.region}/${r.kind}/${r.id}`;

const pick = (r: Pick<AwsResource, 'kind' | 'id' | 'region' | 'name'>): Pick<AwsResourceResult, 'kind' | 'id' | 'region' | 'name'> => ({
  kind: r.kind,
  id: r.id,
  region: r.region,
  ...(r.name ? { name: r.name } : {}),
});

const byResource = (a: { kind: string; region: string; id: string }, b: { kind: string; region: string; id: string }): number =>
  a.kind.localeCompare(b.kind) || a.region.localeCompare(b.region) || a.id.localeCompare(b.id);

function countOutcomes(results: AwsResourceResult[]): Partial<Record<AwsOutcome, number>> {
  const counts: Partial<Record<AwsOutcome, number>> = {};
  for (const { outcome } of results) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

function errorName(err: unknown): string {
  return (err as { name?: string } | undefined)?.name ?? 'Error';
}

/** Turns an authentication or permission error into a failure Temporal does not retry, saying what to fix. */
async function notAllowedIsFinal<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const name = errorName(err);
    if (!NOT_ALLOWED.has(name)) throw err;
    throw ApplicationFailure.nonRetryable(
      `AWS refused to ${what} (${name}: ${(err as Error).message}): check the credentials and the IAM policy in iam/`,
      'AwsNotAllowed',
    );
  }
}

function isThrottling(err: unknown): boolean {
  return THROTTLING.has(errorName(err)) || (err as { $retryable?: { throttling?: boolean } }).$retryable?.throttling === true;
}

function cached<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
