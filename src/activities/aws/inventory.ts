/**
 * The DynamoDB inventory: which tagged resources belong to which namespace, refreshed on a
 * Schedule, so a stop at 19:00 does not list every resource of every region for every
 * environment at once. This file owns the table's format (keys, items, the refresh marks).
 *
 * A refresh that timed out may still run beside its retry: every write is conditional on
 * being the newest, so the older one can never undo what the newer one wrote.
 */
import { CreateTableCommand, DescribeTableCommand, waitUntilTableExists, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, paginateQuery, paginateScan, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ApplicationFailure } from '@temporalio/common';
import pLimit from 'p-limit';
import { Failure } from '../../domain/failures';
import type { AwsResourceKind, InventoryReport } from '../contracts';
import { NAMESPACE_TAG, resourceKey, SCHEDULER_TAG, STOPPED_TAG, type ResourceLister } from './resources';
import { errorName, everyPage, heartbeat, throwIfCancelled, type AwsSettings } from './sdk';

/** Key attributes of the inventory table: one partition per namespace, one item per resource. */
const PARTITION_KEY = 'namespace';
const SORT_KEY = 'resource';
/** Kubernetes namespace names cannot contain `_`, so this partition never collides with one. */
const REFRESH_PARTITION = '_inventory';
/** Inventory writes in flight at once; each is conditional, so one at a time per item. */
const WRITE_CONCURRENCY = 8;

export interface InventoryItem {
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

type TableSettings = Pick<AwsSettings, 'tableName' | 'endpoint' | 'logger'> & { tableRegion: string };

function missingTable({ tableName, tableRegion, endpoint }: TableSettings): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `DynamoDB table "${tableName}" does not exist in ${tableRegion}${endpoint ? ` at ${endpoint}` : ''}: ` +
      'set INVENTORY_TABLE (and INVENTORY_TABLE_REGION) to an existing table, or create it with the AWS setup command (docs/aws.md)',
    Failure.InventoryTableMissing,
  );
}

export interface Inventory {
  /** The inventory's entries for a namespace, or why they cannot be trusted. */
  read(namespace: string): Promise<{ items: InventoryItem[] } | { problem: string }>;
  /** Lists every region's resources tagged `scheduler` and rewrites the table with them. */
  refresh(): Promise<InventoryReport>;
  /** Every resource entry, of every namespace. */
  scan(): Promise<InventoryItem[]>;
}

export function createInventory(
  settings: TableSettings & Pick<AwsSettings, 'regions' | 'cacheMaxAgeMs'> & { now: () => Date },
  table: DynamoDBDocumentClient,
  lister: ResourceLister,
): Inventory {
  const { regions, tableName, logger, now } = settings;

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
        const { Item } = await table.send(
          new GetCommand({ TableName: tableName, Key: { [PARTITION_KEY]: REFRESH_PARTITION, [SORT_KEY]: region } }),
        );
        return typeof Item?.refreshedAt === 'string' ? Item.refreshedAt : undefined;
      }),
    );
  }

  const scan = (): Promise<InventoryItem[]> =>
    everyPage(paginateScan({ client: table }, { TableName: tableName }), (page) =>
      ((page.Items ?? []) as InventoryItem[]).filter((item) => item.namespace !== REFRESH_PARTITION),
    );

  return {
    scan,

    async read(namespace) {
      try {
        const oldest = Math.min(...(await refreshedAt()).map((at) => (at === undefined ? -Infinity : Date.parse(at))));
        if (oldest === -Infinity) return { problem: 'inventory never refreshed for every region: listed live' };
        const ageMs = now().getTime() - oldest;
        if (ageMs > settings.cacheMaxAgeMs) return { problem: `inventory is ${Math.round(ageMs / 60_000)} minutes old: listed live` };
        const items: InventoryItem[] = [];
        const pages = paginateQuery(
          { client: table },
          {
            TableName: tableName,
            KeyConditionExpression: '#ns = :ns',
            ExpressionAttributeNames: { '#ns': PARTITION_KEY },
            ExpressionAttributeValues: { ':ns': namespace },
          },
        );
        for await (const page of pages) items.push(...((page.Items ?? []) as InventoryItem[]));
        return { items };
      } catch (err) {
        // Stopping an environment must not depend on the cache: say why, and list live.
        const problem =
          errorName(err) === 'ResourceNotFoundException'
            ? missingTable(settings).message
            : `inventory unreadable (${errorName(err)}: ${(err as Error).message})`;
        logger.warn({ namespace, table: tableName, err }, 'AWS inventory not usable, listing live');
        return { problem: `${problem}; listed live` };
      }
    },

    async refresh() {
      const startedAt = Date.now();
      const seenAt = now().toISOString();
      const found = (
        await Promise.all(
          regions.map((region) =>
            lister.listRegion(region, [{ Name: 'tag-key', Values: [SCHEDULER_TAG] }], (tags) => SCHEDULER_TAG in tags),
          ),
        )
      ).flat();
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
        await Promise.all(
          items.map((item) => limit(() => putIfNotNewer(item as unknown as Record<string, unknown>, 'lastSeen').finally(heartbeat))),
        );
        throwIfCancelled();
        if (await newerFinished()) return await superseded(true);
        const stale = (await scan()).filter((item) => !current.has(`${item.namespace}\u0000${item.resource}`) && !(item.lastSeen > seenAt));
        const removed = await Promise.all(stale.map((item) => limit(() => deleteEntry(item, seenAt, 'older').finally(heartbeat))));
        // Written last: only a complete refresh makes the inventory trusted.
        const marked = await Promise.all(
          regions.map((region) =>
            putIfNotNewer({ [PARTITION_KEY]: REFRESH_PARTITION, [SORT_KEY]: region, refreshedAt: seenAt }, 'refreshedAt'),
          ),
        );
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
        if (withoutNamespace.length > 0)
          logger.warn({ resources: withoutNamespace }, `tagged ${SCHEDULER_TAG} but no ${NAMESPACE_TAG} tag: they follow no environment`);
        return report;
      } catch (err) {
        if (errorName(err) === 'ResourceNotFoundException') throw missingTable(settings);
        throw err;
      }
    },
  };
}

/**
 * Checks that the inventory table exists with the expected key; with `create`, creates it
 * (on-demand billing) and waits until it is active.
 */
export async function ensureTable(settings: TableSettings, dynamo: DynamoDBClient, { create = false } = {}): Promise<'exists' | 'created'> {
  const { tableName, tableRegion, logger } = settings;
  try {
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
    const keys = Object.fromEntries((Table?.KeySchema ?? []).map((k) => [k.KeyType, k.AttributeName]));
    if (keys.HASH !== PARTITION_KEY || keys.RANGE !== SORT_KEY) {
      throw new Error(
        `DynamoDB table "${tableName}" (INVENTORY_TABLE) has key ${JSON.stringify(keys)}; the inventory needs HASH "${PARTITION_KEY}" and RANGE "${SORT_KEY}"`,
      );
    }
    return 'exists';
  } catch (err) {
    if (errorName(err) !== 'ResourceNotFoundException') throw err;
    if (!create) throw missingTable(settings);
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
}
