/**
 * EC2 instances, RDS DB instances and Aurora DB clusters as AWS describes them now: the
 * tags that make one follow an environment (`namespace=<ns>`, `scheduler=enabled`), what
 * AWS can never stop, and the paged listings by region or by id that the inventory and
 * the actions both read.
 */
import { paginateDescribeInstances, type Filter, type Instance, type Tag as Ec2Tag } from '@aws-sdk/client-ec2';
import {
  paginateDescribeDBClusters,
  paginateDescribeDBInstances,
  type DBCluster,
  type DBInstance,
  type Tag as RdsTag,
} from '@aws-sdk/client-rds';
import type { AwsResource, AwsResourceKind, AwsResourceResult } from '../contracts';
import { cached, chunks, everyPage, type AwsClients, type AwsSettings } from './sdk';

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

/** A resource as AWS describes it right now. */
export interface LiveResource extends AwsResource {
  tags: Record<string, string>;
  /** RDS resources are tagged by ARN. */
  arn?: string;
}

/** A resource known by its id, e.g. from the inventory; `resource` is its `resourceKey`. */
export type ResourceRef = Pick<AwsResource, 'kind' | 'id' | 'region'> & { resource: string };

const LIVE_EC2_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];
const FILTER_CHUNK = 100;

export interface ResourceLister {
  /** Lists one region; `ec2Filters` narrow EC2 server-side, `keep` filters all three kinds by tag. */
  listRegion(region: string, ec2Filters: Filter[], keep: (tags: Record<string, string>) => boolean): Promise<LiveResource[]>;
  /** Current description of resources known by id; those AWS no longer knows are returned as `gone`. */
  describe<T extends ResourceRef>(refs: T[]): Promise<{ found: LiveResource[]; gone: T[] }>;
}

export function createResourceLister(clients: AwsClients, pageSize: AwsSettings['pageSize']): ResourceLister {
  const ec2PageSize = pageSize?.ec2 ?? 1000;
  const rdsPageSize = pageSize?.rds ?? 100;

  const describeEc2 = (region: string, filters: Filter[]): Promise<LiveResource[]> =>
    everyPage(paginateDescribeInstances({ client: clients.ec2(region), pageSize: ec2PageSize }, { Filters: filters }), (page) =>
      (page.Reservations ?? []).flatMap((reservation) => (reservation.Instances ?? []).map((instance) => fromEc2(instance, region))),
    );

  const describeDbInstances = (region: string, ids?: string[]): Promise<LiveResource[]> =>
    everyPage(
      paginateDescribeDBInstances(
        { client: clients.rds(region), pageSize: rdsPageSize },
        { Filters: ids ? [{ Name: 'db-instance-id', Values: ids }] : undefined },
      ),
      (page) => (page.DBInstances ?? []).map((db) => fromDbInstance(db, region)),
    );

  const describeDbClusters = (region: string, ids?: string[]): Promise<LiveResource[]> =>
    everyPage(
      paginateDescribeDBClusters(
        { client: clients.rds(region), pageSize: rdsPageSize },
        { Filters: ids ? [{ Name: 'db-cluster-id', Values: ids }] : undefined },
      ),
      (page) => (page.DBClusters ?? []).map((cluster) => fromDbCluster(cluster, region)),
    );

  return {
    async listRegion(region, ec2Filters, keep) {
      const [instances, dbInstances, clusters] = await Promise.all([
        describeEc2(region, [...ec2Filters, { Name: 'instance-state-name', Values: LIVE_EC2_STATES }]),
        describeDbInstances(region),
        describeDbClusters(region),
      ]);
      return [...instances, ...dbInstances, ...clusters].filter((found) => keep(found.tags));
    },

    async describe(refs) {
      const found: LiveResource[] = [];
      const groups = new Map<string, (typeof refs)[number][]>();
      for (const ref of refs) cached(groups, `${ref.region}/${ref.kind}`, () => []).push(ref);
      await Promise.all(
        [...groups.values()].flatMap((group) =>
          chunks(group, FILTER_CHUNK).map(async (chunk) => {
            const { region, kind } = chunk[0]!;
            const ids = chunk.map((ref) => ref.id);
            const described =
              kind === 'ec2-instance'
                ? await describeEc2(region, [
                    { Name: 'instance-id', Values: ids },
                    { Name: 'instance-state-name', Values: LIVE_EC2_STATES },
                  ])
                : kind === 'rds-instance'
                  ? await describeDbInstances(region, ids)
                  : await describeDbClusters(region, ids);
            found.push(...described);
          }),
        ),
      );
      const present = new Set(found.map(resourceKey));
      return { found, gone: refs.filter((ref) => !present.has(ref.resource)) };
    },
  };
}

function fromEc2(instance: Instance, region: string): LiveResource {
  const tags = tagMap(instance.Tags);
  return {
    kind: 'ec2-instance',
    id: instance.InstanceId ?? '',
    region,
    ...(tags.Name ? { name: tags.Name } : {}),
    state: instance.State?.Name ?? 'unknown',
    scheduler: tags[SCHEDULER_TAG] ?? null,
    ...(instance.InstanceType ? { instanceType: instance.InstanceType } : {}),
    ...(tags[ASG_TAG]
      ? {
          unsupported: `managed by Auto Scaling group ${tags[ASG_TAG]}: the group would replace a stopped member with a running one; scale the group instead`,
        }
      : instance.RootDeviceType === 'instance-store'
        ? { unsupported: 'instance-store root volume: EC2 cannot stop it, only terminate it' }
        : {}),
    tags,
  };
}

function fromDbInstance(db: DBInstance, region: string): LiveResource {
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
    ...(db.DBInstanceClass ? { instanceType: db.DBInstanceClass } : {}),
    ...(unsupported ? { unsupported } : {}),
    ...(db.DBClusterIdentifier ? { cluster: db.DBClusterIdentifier } : {}),
    tags,
    ...(db.DBInstanceArn ? { arn: db.DBInstanceArn } : {}),
  };
}

function fromDbCluster(cluster: DBCluster, region: string): LiveResource {
  const tags = tagMap(cluster.TagList);
  return {
    kind: 'rds-cluster',
    id: cluster.DBClusterIdentifier ?? '',
    region,
    ...(tags.Name ? { name: tags.Name } : {}),
    state: cluster.Status ?? 'unknown',
    scheduler: tags[SCHEDULER_TAG] ?? null,
    ...(cluster.EngineMode === 'serverless'
      ? { unsupported: 'Aurora Serverless v1: RDS cannot stop it (it pauses itself when idle)' }
      : {}),
    tags,
    ...(cluster.DBClusterArn ? { arn: cluster.DBClusterArn } : {}),
  };
}

function tagMap(tags: (Ec2Tag | RdsTag)[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

/** `<region>/<kind>/<id>`: the inventory's sort key, and how logs name a resource. */
export const resourceKey = (r: { region: string; kind: AwsResourceKind; id: string }): string => `${r.region}/${r.kind}/${r.id}`;

export const pick = (
  r: Pick<AwsResource, 'kind' | 'id' | 'region' | 'name' | 'instanceType' | 'cluster'>,
): Pick<AwsResourceResult, 'kind' | 'id' | 'region' | 'name' | 'instanceType' | 'cluster'> => ({
  kind: r.kind,
  id: r.id,
  region: r.region,
  ...(r.name ? { name: r.name } : {}),
  ...(r.instanceType ? { instanceType: r.instanceType } : {}),
  ...(r.cluster ? { cluster: r.cluster } : {}),
});

export const byResource = (a: { kind: string; region: string; id: string }, b: { kind: string; region: string; id: string }): number =>
  a.kind.localeCompare(b.kind) || a.region.localeCompare(b.region) || a.id.localeCompare(b.id);
