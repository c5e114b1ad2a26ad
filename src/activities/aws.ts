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
  EC2Client,
  paginateDescribeInstances,
  StartInstancesCommand,
  StopInstancesCommand,
  type Filter,
  type Instance,
  type Tag as Ec2Tag,
} from '@aws-sdk/client-ec2';
import {
  paginateDescribeDBClusters,
  paginateDescribeDBInstances,
  RDSClient,
  StartDBClusterCommand,
  StartDBInstanceCommand,
  StopDBClusterCommand,
  StopDBInstanceCommand,
  type DBCluster,
  type DBInstance,
  type Tag as RdsTag,
} from '@aws-sdk/client-rds';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, waitUntilTableExists, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, GetCommand, paginateQuery, paginateScan } from '@aws-sdk/lib-dynamodb';
import { ApplicationFailure } from '@temporalio/common';
import pLimit from 'p-limit';
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
} from './contracts';

export const NAMESPACE_TAG = 'namespace';
export const SCHEDULER_TAG = 'scheduler';

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
  lastSeen: string;
}

/** A resource as AWS describes it right now. */
interface Found extends AwsResource {
  tags: Record<string, string>;
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
const UNSUPPORTED = new Set(['UnsupportedOperation', 'InvalidParameterCombination', 'InvalidDBClusterStateFault', 'InvalidDBInstanceState', 'InvalidDBInstanceStateFault']);
/** Per resource calls in flight at once: enough to be quick, few enough to stay under API rate limits. */
const CONCURRENCY = 4;
const FILTER_CHUNK = 100;
const BATCH_WRITE = 25;

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
      for (const db of page.DBInstances ?? []) found.push(fromDbInstance(db, region));
    }
    return found;
  }

  async function describeDbClusters(region: string, ids?: string[]): Promise<Found[]> {
    const found: Found[] = [];
    const filters = ids ? [{ Name: 'db-cluster-id', Values: ids }] : undefined;
    for await (const page of paginateDescribeDBClusters({ client: rds(region), pageSize: rdsPageSize }, { Filters: filters })) {
      for (const cluster of page.DBClusters ?? []) found.push(fromDbCluster(cluster, region));
    }
    return found;
  }

  /** Current description of inventory entries, by id; entries AWS no longer knows are returned as `gone`. */
  async function describeItems(items: InventoryItem[]): Promise<{ found: Found[]; gone: InventoryItem[] }> {
    const found: Found[] = [];
    const groups = new Map<string, InventoryItem[]>();
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

  /** Every resource tagged for the namespace (whatever its `scheduler` tag), current as of now. */
  async function lookup(namespace: string): Promise<{ source: AwsLookupSource; found: Found[]; gone: InventoryItem[]; notes: string[] }> {
    const inventory = await readInventory(namespace);
    if ('items' in inventory) {
      const { found, gone } = await describeItems(inventory.items);
      // Retagged since the last refresh: it belongs to someone else now.
      return { source: 'cache', found: found.filter((f) => f.tags[NAMESPACE_TAG] === namespace), gone, notes: [] };
    }
    const found = (
      await Promise.all(regions.map((region) => listRegion(region, [{ Name: `tag:${NAMESPACE_TAG}`, Values: [namespace] }], (tags) => tags[NAMESPACE_TAG] === namespace)))
    ).flat();
    return { source: 'live', found, gone: [], notes: [inventory.problem] };
  }

  async function act(namespace: string, action: Action): Promise<AwsActionReport> {
    const startedAt = Date.now();
    const { source, found, gone, notes } = await lookup(namespace);
    const enabled = found.filter((f) => f.scheduler === 'enabled');
    const enabledClusters = new Set(enabled.filter((f) => f.kind === 'rds-cluster').map((f) => `${f.region}/${f.id}`));
    const limit = pLimit(CONCURRENCY);
    const results = await Promise.all(found.map((resource) => limit(() => actOn(resource, action, enabledClusters))));
    for (const item of gone) results.push({ ...pick(item), outcome: 'gone', before: item.state, after: 'gone', detail: 'in the inventory but no longer in AWS' });
    results.sort(byResource);
    const counts = countOutcomes(results);
    logger.info({ namespace, action, source, dryRun, ...counts }, `AWS ${action} done`);
    return { namespace, action, source, resources: results, notes, durationMs: Date.now() - startedAt };
  }

  async function actOn(resource: Found, action: Action, enabledClusters: Set<string>): Promise<AwsResourceResult> {
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
    const plan = planFor(resource.kind, resource.state, action);
    if (plan === 'busy') return result('busy', `${resource.state}: cannot ${action} until that finishes; the next ${action} catches it`);
    if (plan === 'failed') return result('failed', `RDS reports ${resource.state}`);
    if (plan !== 'act') return result(plan);
    if (dryRun) return result('dry-run', `would ${action}`);
    try {
      return result('changed', undefined, await call(resource, action));
    } catch (err) {
      const name = errorName(err);
      // Still throttled after the SDK's own retries: let Temporal retry the activity later.
      if (isThrottling(err)) throw err;
      if (NOT_FOUND.has(name)) return result('gone', `${name}: ${(err as Error).message}`, 'gone');
      if (name === 'IncorrectInstanceState') return result('busy', (err as Error).message);
      if (UNSUPPORTED.has(name)) return result('unsupported', `${name}: ${(err as Error).message}`);
      // AWS refused for good (access denied, capacity, ...): report it; a retry would fail the same way.
      if ((err as { $fault?: string }).$fault === 'client') {
        logger.warn({ resource: resourceKey(resource), action, err }, 'AWS refused');
        return result('failed', `${name}: ${(err as Error).message}`);
      }
      throw err;
    }
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

  async function writeItems(items: Record<string, unknown>[]): Promise<void> {
    await batchWrite(items.map((Item) => ({ PutRequest: { Item } })));
  }

  async function deleteItems(keys: Record<string, string>[]): Promise<void> {
    await batchWrite(keys.map((Key) => ({ DeleteRequest: { Key } })));
  }

  async function batchWrite(requests: NonNullable<ConstructorParameters<typeof BatchWriteCommand>[0]['RequestItems']>[string]): Promise<void> {
    for (const chunk of chunks(requests, BATCH_WRITE)) {
      let pending = chunk;
      // DynamoDB may accept part of a batch under load; the rest comes back to be sent again.
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt === 8) throw new Error(`DynamoDB kept ${pending.length} writes unprocessed in table ${tableName}`);
        if (attempt > 0) await sleep(Math.min(100 * 2 ** attempt, 5_000));
        const out = await table.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending } }));
        pending = out.UnprocessedItems?.[tableName] ?? [];
      }
    }
  }

  return {
    async refreshAwsInventory(): Promise<InventoryReport> {
      const startedAt = Date.now();
      const seenAt = now().toISOString();
      const found = (await Promise.all(regions.map((region) => listRegion(region, [{ Name: 'tag-key', Values: [SCHEDULER_TAG] }], (tags) => SCHEDULER_TAG in tags)))).flat();
      const withoutNamespace = found.filter((f) => !f.tags[NAMESPACE_TAG]).map(resourceKey);
      const items: InventoryItem[] = found
        .filter((f) => f.tags[NAMESPACE_TAG])
        .map(({ tags, ...resource }) => ({ ...resource, namespace: tags[NAMESPACE_TAG]!, resource: resourceKey(resource), lastSeen: seenAt }));
      const current = new Set(items.map((item) => `${item.namespace}\u0000${item.resource}`));
      try {
        await writeItems(items as unknown as Record<string, unknown>[]);
        const stale: Record<string, string>[] = [];
        const scan = paginateScan({ client: table }, { TableName: tableName, ProjectionExpression: '#ns, #r', ExpressionAttributeNames: { '#ns': PARTITION_KEY, '#r': SORT_KEY } });
        for await (const page of scan) {
          for (const key of (page.Items ?? []) as { namespace: string; resource: string }[]) {
            if (key.namespace !== REFRESH_PARTITION && !current.has(`${key.namespace}\u0000${key.resource}`)) stale.push(key);
          }
        }
        await deleteItems(stale);
        // Written last: only a complete refresh makes the inventory trusted.
        await writeItems(regions.map((region) => ({ [PARTITION_KEY]: REFRESH_PARTITION, [SORT_KEY]: region, refreshedAt: seenAt })));
        const report: InventoryReport = {
          regions,
          resources: items.length,
          namespaces: new Set(items.map((item) => item.namespace)).size,
          removed: stale.length,
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

    async stopAwsResources(namespace, timing) {
      await holdUntil(timing);
      return notAllowedIsFinal(`list the resources of ${namespace}`, () => act(namespace, 'stop'));
    },
    startAwsResources: (namespace) => notAllowedIsFinal(`list the resources of ${namespace}`, () => act(namespace, 'start')),

    async awsStatus(namespace: string): Promise<AwsStatus> {
      const { source, found, notes } = await notAllowedIsFinal(`list the resources of ${namespace}`, () => lookup(namespace));
      const resources = found.map(({ tags: _tags, ...resource }) => resource).sort(byResource);
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
    ...(instance.RootDeviceType === 'instance-store' ? { unsupported: 'instance-store root volume: EC2 cannot stop it, only terminate it' } : {}),
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
  };
}

function tagMap(tags: (Ec2Tag | RdsTag)[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

const resourceKey = (r: { region: string; kind: AwsResourceKind; id: string }): string => `${r.region}/${r.kind}/${r.id}`;

const pick = (r: AwsResource | InventoryItem): Pick<AwsResourceResult, 'kind' | 'id' | 'region' | 'name'> => ({
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
