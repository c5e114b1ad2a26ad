/**
 * What every part of the AWS half shares: its settings, one SDK client per service and
 * region, what an AWS error name means for a retry, and paging with heartbeats.
 *
 * Throttling is retried by the SDK (adaptive mode: backoff plus client-side rate limiting)
 * and then, if it persists, by Temporal's activity retry. Authentication and permission
 * errors are never retried: AWS gives the same answer however often it is asked.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { RDSClient } from '@aws-sdk/client-rds';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Counter } from 'prom-client';
import { Failure } from '../../domain/failures';
import type { Logger } from '../../logger';

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
  /** A start's wait for its databases (wait-for-databases): its bound (START_READY_TIMEOUT_SECONDS) and how often it looks. */
  databaseWait?: { timeoutMs: number; pollMs?: number };
}

/** The region of the inventory table; undefined when no region is configured, so no AWS resource follows an environment. */
export function inventoryTableRegion(settings: Pick<AwsSettings, 'regions' | 'tableRegion'>): string | undefined {
  const tableRegion = settings.tableRegion ?? settings.regions[0];
  return settings.regions.length > 0 && tableRegion ? tableRegion : undefined;
}

export interface AwsClients {
  ec2(region: string): EC2Client;
  rds(region: string): RDSClient;
  /** The inventory table's region. */
  dynamo: DynamoDBClient;
  /** The same, reading and writing plain objects. */
  table: DynamoDBDocumentClient;
}

export function createAwsClients(settings: Pick<AwsSettings, 'endpoint' | 'credentials' | 'maxAttempts'>, tableRegion: string): AwsClients {
  const clientConfig = (region: string) => ({
    region,
    endpoint: settings.endpoint,
    credentials: settings.credentials,
    maxAttempts: settings.maxAttempts ?? 8,
    retryMode: 'adaptive' as const,
  });
  const ec2Clients = new Map<string, EC2Client>();
  const rdsClients = new Map<string, RDSClient>();
  const dynamo = new DynamoDBClient(clientConfig(tableRegion));
  return {
    ec2: (region) => cached(ec2Clients, region, () => new EC2Client(clientConfig(region))),
    rds: (region) => cached(rdsClients, region, () => new RDSClient(clientConfig(region))),
    dynamo,
    table: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
  };
}

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestThrottled',
]);
export const NOT_FOUND = new Set([
  'InvalidInstanceID.NotFound',
  'InvalidInstanceID.Malformed',
  'DBInstanceNotFound',
  'DBInstanceNotFoundFault',
  'DBClusterNotFoundFault',
]);
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
export const INSUFFICIENT_CAPACITY = 'InsufficientInstanceCapacity';
/** Refusals that mean "not in this configuration", e.g. a one-time Spot instance, a global cluster member. */
export const UNSUPPORTED = new Set([
  'UnsupportedOperation',
  'InvalidParameterCombination',
  'InvalidDBClusterStateFault',
  'InvalidDBInstanceState',
  'InvalidDBInstanceStateFault',
]);

export function errorName(err: unknown): string {
  return (err as { name?: string } | undefined)?.name ?? 'Error';
}

export function isThrottling(err: unknown): boolean {
  return THROTTLING.has(errorName(err)) || (err as { $retryable?: { throttling?: boolean } }).$retryable?.throttling === true;
}

/** Turns an authentication or permission error into a failure Temporal does not retry, saying what to fix. */
export async function notAllowedIsFinal<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const name = errorName(err);
    if (!NOT_ALLOWED.has(name)) throw err;
    throw ApplicationFailure.nonRetryable(
      `AWS refused to ${what} (${name}: ${(err as Error).message}): check the credentials and the IAM policy in iam/`,
      Failure.AwsNotAllowed,
    );
  }
}

/** Every item of every page, telling Temporal after each page that the activity is alive. */
export async function everyPage<Page, Item>(pages: AsyncIterable<Page>, itemsOf: (page: Page) => Iterable<Item>): Promise<Item[]> {
  const items: Item[] = [];
  for await (const page of pages) {
    heartbeat();
    items.push(...itemsOf(page));
  }
  return items;
}

/** Inside an activity, tells Temporal it is alive (a refresh that stops heartbeating is retried, and this attempt learns it was cancelled). */
export function heartbeat(): void {
  activityContext()?.heartbeat();
}

/** Stops an attempt Temporal has given up on (timed out, cancelled) before it writes anything more. */
export function throwIfCancelled(): void {
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

export function cached<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}

export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
