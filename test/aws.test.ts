/**
 * The AWS activities against a real moto server: EC2 instances, RDS instances and Aurora
 * clusters in two namespaces and two regions, plus untagged and `scheduler=disabled`
 * ones. Each test starts from an empty account and checks what a user would: the states
 * AWS reports afterwards, the DynamoDB inventory's items, and the report a Slack reply shows.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AutoScalingClient, CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  CreateDBInstanceReadReplicaCommand,
  DeleteDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { Counter, Registry } from 'prom-client';
import { createAwsActivities, createAwsStatusReader, ensureInventoryTable } from '../src/activities/aws';
import { stoppedInstances } from '../src/domain/savings';
import { STOPPED_TAG } from '../src/activities/aws/resources';
import type { AwsSettings } from '../src/activities/aws/sdk';
import type { AwsActionReport, AwsOutcome, DatabaseWait } from '../src/activities/contracts';
import { createLogger } from '../src/logger';
import { databasesStarted } from '../src/workflows/reports';
import { awsInventoryWorkflow } from '../src/workflows';
import { moto, motoCheckingCredentials, MOTO_CREDENTIALS, type Moto } from './support/moto';
import { useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const MAIN = 'eu-west-1';
const SECOND = 'us-east-1';
const TABLE = 'devenv-inventory';
type Tags = Record<string, string>;
const enabled = (namespace: string): Tags => ({ namespace, scheduler: 'enabled' });

describe('AWS activities (moto)', function () {
  this.timeout(60_000);
  let server: Moto;

  const clientConfig = (region: string) => ({ region, endpoint: server.endpoint, credentials: MOTO_CREDENTIALS });
  const ec2 = (region = MAIN) => new EC2Client(clientConfig(region));
  const rds = (region = MAIN) => new RDSClient(clientConfig(region));
  const toTags = (tags: Tags) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

  function settings(overrides: Partial<AwsSettings> = {}): AwsSettings {
    return {
      regions: [MAIN, SECOND],
      endpoint: server.endpoint,
      credentials: MOTO_CREDENTIALS,
      tableName: TABLE,
      cacheMaxAgeMs: 30 * 60_000,
      dryRun: false,
      logger: createLogger('silent'),
      ...overrides,
    };
  }
  const aws = (overrides: Partial<AwsSettings> = {}) => createAwsActivities(settings(overrides));

  async function launch(tags: Tags, region = MAIN): Promise<string> {
    const out = await ec2(region).send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [{ ResourceType: 'instance', Tags: toTags(tags) }],
      }),
    );
    return out.Instances![0]!.InstanceId!;
  }

  async function createDb(id: string, tags: Tags, region = MAIN): Promise<string> {
    await rds(region).send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'admin',
        MasterUserPassword: 'not-a-secret-1',
        Tags: toTags(tags),
      }),
    );
    return id;
  }

  async function createCluster(id: string, tags: Tags, engineMode?: string): Promise<string> {
    await rds().send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: id,
        Engine: engineMode === 'serverless' ? 'aurora-mysql' : 'aurora-postgresql',
        EngineMode: engineMode,
        MasterUsername: 'admin',
        MasterUserPassword: 'not-a-secret-1',
        Tags: toTags(tags),
      }),
    );
    return id;
  }

  async function ec2State(id: string, region = MAIN): Promise<string> {
    const out = await ec2(region).send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return out.Reservations![0]!.Instances![0]!.State!.Name!;
  }
  async function ec2Tags(id: string, region = MAIN): Promise<Record<string, string>> {
    const out = await ec2(region).send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return Object.fromEntries((out.Reservations![0]!.Instances![0]!.Tags ?? []).map((t) => [t.Key!, t.Value!]));
  }
  async function dbTags(id: string): Promise<Record<string, string>> {
    const out = await rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    return Object.fromEntries((out.DBInstances![0]!.TagList ?? []).map((t) => [t.Key!, t.Value!]));
  }
  /** The outcome counter as /metrics shows it, on a registry of the test's own. */
  function outcomeCounter() {
    const registry = new Registry();
    const counter = new Counter({
      name: 'devenv_aws_outcomes_total',
      help: 'test',
      labelNames: ['action', 'outcome'],
      registers: [registry],
    });
    return {
      counter,
      value: async (action: string, outcome: string) =>
        (await counter.get()).values.find((v) => v.labels.action === action && v.labels.outcome === outcome)?.value ?? 0,
    };
  }
  async function dbState(id: string): Promise<string> {
    const out = await rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    return out.DBInstances![0]!.DBInstanceStatus!;
  }
  async function clusterState(id: string): Promise<string> {
    const out = await rds().send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }));
    return out.DBClusters![0]!.Status!;
  }

  const outcomes = (report: AwsActionReport): Record<string, AwsOutcome> =>
    Object.fromEntries(report.resources.map((r) => [r.id, r.outcome]));

  /** The table's resource entries, one line each; every entry must carry a last-seen time from this run. */
  async function inventoryItems(): Promise<string[]> {
    const table = DynamoDBDocumentClient.from(new DynamoDBClient(clientConfig(MAIN)));
    const out = await table.send(new ScanCommand({ TableName: TABLE }));
    const items = (out.Items ?? []).filter((item) => item.namespace !== '_inventory');
    for (const item of items) assert.ok(Date.now() - Date.parse(item.lastSeen) < 60_000, `lastSeen ${item.lastSeen} of ${item.id}`);
    return items.map((item) => `${item.namespace} ${item.region} ${item.kind} ${item.id} ${item.state} scheduler=${item.scheduler}`).sort();
  }

  /** Two environments across two regions, with neighbours that must never be touched. */
  async function world() {
    const w = {
      web: await launch({ ...enabled('dev1'), Name: 'dev1-web' }),
      worker: await launch(enabled('dev1')),
      far: await launch(enabled('dev1'), SECOND),
      pinned: await launch({ namespace: 'dev1', scheduler: 'disabled' }),
      other: await launch(enabled('dev2')),
      untagged: await launch({ Name: 'bastion' }),
      db: await createDb('dev1-db', enabled('dev1')),
      otherDb: await createDb('dev2-db', enabled('dev2')),
      untaggedDb: await createDb('shared-db', {}),
      aurora: await createCluster('dev1-aurora', enabled('dev1')),
    };
    return w;
  }

  before(async function () {
    server = await moto();
  });

  beforeEach(async function () {
    await server.reset();
    await ensureInventoryTable(settings(), { create: true });
  });

  it('stops and starts exactly the EC2, RDS and Aurora resources tagged for the namespace', async function () {
    const w = await world();
    const stop = await aws().stopAwsResources('dev1');

    assert.deepEqual(outcomes(stop), {
      [w.web]: 'changed',
      [w.worker]: 'changed',
      [w.far]: 'changed',
      [w.pinned]: 'excluded',
      [w.db]: 'changed',
      [w.aurora]: 'changed',
    });
    assert.equal(stop.resources.find((r) => r.id === w.web)?.name, 'dev1-web');
    // What the environment's ledger counts as saved: the instances stopped, by the type AWS describes.
    assert.deepEqual(stoppedInstances(stop.resources), { 'ec2 t3.micro': 3, 'rds db.t3.micro': 1 });
    for (const id of [w.web, w.worker]) assert.equal(await ec2State(id), 'stopped');
    assert.equal(await ec2State(w.far, SECOND), 'stopped');
    assert.equal(await dbState(w.db), 'stopped');
    assert.equal(await clusterState(w.aurora), 'stopped');
    // Neighbours: scheduler=disabled, another namespace, untagged.
    for (const id of [w.pinned, w.other, w.untagged]) assert.equal(await ec2State(id), 'running');
    assert.equal(await dbState(w.otherDb), 'available');
    assert.equal(await dbState(w.untaggedDb), 'available');

    const start = await aws().startAwsResources('dev1');
    assert.deepEqual(
      start.resources
        .filter((r) => r.outcome === 'changed')
        .map((r) => r.id)
        .sort(),
      [w.web, w.worker, w.far, w.db, w.aurora].sort(),
    );
    for (const id of [w.web, w.worker, w.pinned, w.other]) assert.equal(await ec2State(id), 'running');
    assert.equal(await ec2State(w.far, SECOND), 'running');
    assert.equal(await dbState(w.db), 'available');
    assert.equal(await clusterState(w.aurora), 'available');
  });

  it('counts already stopped resources as done, and a repeated stop changes nothing', async function () {
    const w = await world();
    await ec2().send(new StopInstancesCommand({ InstanceIds: [w.worker] }));

    const first = await aws().stopAwsResources('dev1');
    assert.equal(outcomes(first)[w.worker], 'already');
    assert.equal(outcomes(first)[w.web], 'changed');

    const again = await aws().stopAwsResources('dev1');
    assert.deepEqual(
      again.resources
        .filter((r) => r.outcome !== 'excluded')
        .map((r) => `${r.id} ${r.outcome} ${r.after}`)
        .sort(),
      [w.web, w.worker, w.far, w.aurora, w.db].map((id) => `${id} already stopped`).sort(),
    );
    assert.equal(await ec2State(w.web), 'stopped');
    assert.equal(await dbState(w.db), 'stopped');
  });

  it('writes the inventory to DynamoDB and removes entries for vanished or retagged resources', async function () {
    const w = await world();
    const orphan = await launch({ scheduler: 'enabled' });
    await ec2().send(new StopInstancesCommand({ InstanceIds: [w.worker] }));

    const report = await aws().refreshAwsInventory();
    assert.deepEqual(report.withoutNamespace, [`${MAIN}/ec2-instance/${orphan}`]);
    assert.equal(report.resources, 8);
    assert.equal(report.namespaces, 2);
    assert.deepEqual(
      await inventoryItems(),
      [
        `dev1 ${MAIN} ec2-instance ${w.web} running scheduler=enabled`,
        `dev1 ${MAIN} ec2-instance ${w.worker} stopped scheduler=enabled`,
        `dev1 ${SECOND} ec2-instance ${w.far} running scheduler=enabled`,
        `dev1 ${MAIN} ec2-instance ${w.pinned} running scheduler=disabled`,
        `dev2 ${MAIN} ec2-instance ${w.other} running scheduler=enabled`,
        `dev1 ${MAIN} rds-instance ${w.db} available scheduler=enabled`,
        `dev2 ${MAIN} rds-instance ${w.otherDb} available scheduler=enabled`,
        `dev1 ${MAIN} rds-cluster ${w.aurora} available scheduler=enabled`,
      ].sort(),
    );

    await ec2().send(new TerminateInstancesCommand({ InstanceIds: [w.worker] }));
    await rds().send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: w.otherDb, SkipFinalSnapshot: true }));
    await ec2().send(new CreateTagsCommand({ Resources: [w.web], Tags: toTags({ namespace: 'dev2' }) }));

    const second = await aws().refreshAwsInventory();
    assert.equal(second.removed, 3, 'terminated instance, deleted database, and dev1 entry of the retagged instance');
    const items = await inventoryItems();
    assert.ok(!items.some((line) => line.includes(w.worker) || line.includes(w.otherDb)), items.join('\n'));
    assert.ok(items.includes(`dev2 ${MAIN} ec2-instance ${w.web} running scheduler=enabled`), items.join('\n'));
    assert.ok(!items.some((line) => line.startsWith('dev1') && line.includes(w.web)), items.join('\n'));
  });

  it('uses a fresh inventory, and lists live when it is stale or the table is missing', async function () {
    const w = await world();
    await aws().refreshAwsInventory();
    const late = await launch(enabled('dev1'));

    const cached = await aws().stopAwsResources('dev1');
    assert.equal(cached.source, 'cache');
    assert.equal(outcomes(cached)[w.web], 'changed');
    assert.equal(outcomes(cached)[late], undefined, 'launched after the refresh: not in the inventory yet');
    assert.equal(await ec2State(late), 'running');

    const inAnHour = () => new Date(Date.now() + 60 * 60_000);
    const stale = await aws({ now: inAnHour }).stopAwsResources('dev1');
    assert.equal(stale.source, 'live');
    assert.match(stale.notes.join(), /minutes old/);
    assert.equal(outcomes(stale)[late], 'changed');
    assert.equal(await ec2State(late), 'stopped');

    const noTable = await aws({ tableName: 'no-such-table' }).startAwsResources('dev1');
    assert.equal(noTable.source, 'live');
    assert.match(noTable.notes.join(), /INVENTORY_TABLE/);
    assert.equal(await ec2State(late), 'running');
  });

  it('reports an inventory entry whose resource no longer exists as gone', async function () {
    const w = await world();
    await aws().refreshAwsInventory();
    await ec2().send(new TerminateInstancesCommand({ InstanceIds: [w.worker] }));

    const report = await aws().stopAwsResources('dev1');
    assert.equal(report.source, 'cache');
    assert.equal(outcomes(report)[w.worker], 'gone');
    assert.equal(outcomes(report)[w.web], 'changed');
  });

  it('names the INVENTORY_TABLE setting when the table is missing, and creates it when asked', async function () {
    const missing = aws({ tableName: 'devenv-missing' });
    const missingTable = settings({ tableName: 'devenv-missing' });
    await assert.rejects(missing.refreshAwsInventory(), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /"devenv-missing".*INVENTORY_TABLE/);
      return true;
    });
    await assert.rejects(ensureInventoryTable(missingTable), /INVENTORY_TABLE/);
    assert.equal(await ensureInventoryTable(missingTable, { create: true }), 'created');
    assert.equal(await ensureInventoryTable(missingTable), 'exists');
    assert.equal((await missing.refreshAwsInventory()).resources, 0);
  });

  it('reports a read replica and an Aurora Serverless v1 cluster as unsupported instead of failing', async function () {
    await createDb('reporting-source', {});
    await rds().send(
      new CreateDBInstanceReadReplicaCommand({
        DBInstanceIdentifier: 'dev1-replica',
        SourceDBInstanceIdentifier: 'reporting-source',
        Tags: toTags(enabled('dev1')),
      }),
    );
    await createCluster('dev1-serverless', enabled('dev1'), 'serverless');
    const web = await launch(enabled('dev1'));

    // Resolves (so Temporal does not retry it) and says why for each.
    const report = await aws().stopAwsResources('dev1');
    const byId = Object.fromEntries(report.resources.map((r) => [r.id, r]));
    assert.equal(byId['dev1-replica']?.outcome, 'unsupported');
    assert.match(byId['dev1-replica']?.detail ?? '', /read replica of reporting-source/);
    assert.equal(byId['dev1-serverless']?.outcome, 'unsupported');
    assert.match(byId['dev1-serverless']?.detail ?? '', /Serverless v1/);
    assert.equal(byId[web]?.outcome, 'changed');
    assert.equal(await dbState('dev1-replica'), 'available');
    assert.equal(await ec2State(web), 'stopped');

    const status = await aws().awsStatus('dev1');
    assert.match(status.resources.find((r) => r.id === 'dev1-replica')?.unsupported ?? '', /read replica/);
    // The Slack status table reads the same, outside any workflow.
    assert.deepEqual(await createAwsStatusReader(settings())('dev1'), status);
  });

  it('stops an Aurora cluster as a whole, and reports a tagged member of an untagged cluster', async function () {
    const member = async (id: string, cluster: string) =>
      rds().send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: id,
          DBClusterIdentifier: cluster,
          Engine: 'aurora-postgresql',
          DBInstanceClass: 'db.r6g.large',
          Tags: toTags(enabled('dev1')),
        }),
      );
    await createCluster('dev1-aurora', enabled('dev1'));
    await member('dev1-aurora-1', 'dev1-aurora');
    await createCluster('shared-aurora', {});
    await member('shared-aurora-1', 'shared-aurora');

    const report = await aws().stopAwsResources('dev1');
    const byId = Object.fromEntries(report.resources.map((r) => [r.id, r]));
    assert.equal(byId['dev1-aurora']?.outcome, 'changed');
    assert.equal(byId['dev1-aurora-1']?.outcome, 'excluded');
    assert.match(byId['dev1-aurora-1']?.detail ?? '', /with its Aurora cluster dev1-aurora/);
    assert.equal(byId['shared-aurora-1']?.outcome, 'unsupported');
    assert.match(byId['shared-aurora-1']?.detail ?? '', /tag the cluster/);
    assert.equal(await clusterState('dev1-aurora'), 'stopped');
    assert.equal(await clusterState('shared-aurora'), 'available');
  });

  it('stops again an RDS instance that AWS restarted by itself while the environment was stopped', async function () {
    const w = await world();
    await aws().stopAwsResources('dev1');
    // What RDS does after seven days stopped.
    await rds().send(new StartDBInstanceCommand({ DBInstanceIdentifier: w.db }));
    assert.equal(await dbState(w.db), 'available');

    const again = await aws().stopAwsResources('dev1');
    const changed = again.resources.filter((r) => r.outcome === 'changed');
    assert.deepEqual(
      changed.map((r) => [r.id, r.before]),
      [[w.db, 'available']],
    );
    assert.equal(await dbState(w.db), 'stopped');
  });

  it('a start starts only what the stop stopped: an instance and a database a person had parked stay stopped', async function () {
    const w = await world();
    // Parked by hand before the evening: not the environment's to start in the morning.
    await ec2().send(new StopInstancesCommand({ InstanceIds: [w.worker] }));
    await rds().send(new StopDBInstanceCommand({ DBInstanceIdentifier: w.db }));

    const stop = await aws().stopAwsResources('dev1');
    assert.equal(outcomes(stop)[w.worker], 'already');
    assert.equal(outcomes(stop)[w.db], 'already');
    // Recorded on each resource the stop stopped, before it stopped it; none on the parked ones.
    assert.ok((await ec2Tags(w.web))[STOPPED_TAG], 'the web instance records that the environment stopped it');
    assert.equal((await ec2Tags(w.worker))[STOPPED_TAG], undefined);
    assert.equal((await dbTags(w.db))[STOPPED_TAG], undefined);
    assert.equal((await aws().awsStatus('dev1')).resources.find((r) => r.id === w.aurora)?.stoppedAt !== undefined, true);

    // A stop retried after a crash finds everything stopped; the record is still there.
    const retried = await aws().stopAwsResources('dev1');
    assert.equal(outcomes(retried)[w.web], 'already');

    const start = await aws().startAwsResources('dev1', { onlyStoppedByScheduler: true });
    assert.deepEqual(outcomes(start), {
      [w.web]: 'changed',
      [w.worker]: 'excluded',
      [w.far]: 'changed',
      [w.pinned]: 'excluded',
      [w.db]: 'excluded',
      [w.aurora]: 'changed',
    });
    assert.match(start.resources.find((r) => r.id === w.db)?.detail ?? '', /stopped by someone else before the environment's stop/);
    assert.equal(await ec2State(w.web), 'running');
    assert.equal(await ec2State(w.worker), 'stopped');
    assert.equal(await dbState(w.db), 'stopped');
    assert.equal(await clusterState(w.aurora), 'available');
    assert.equal((await ec2Tags(w.web))[STOPPED_TAG], undefined, 'started again: the record is removed');
  });

  it('refuses a member of an Auto Scaling group, naming the group, and leaves it running', async function () {
    const autoscaling = new AutoScalingClient(clientConfig(MAIN));
    await ec2().send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'dev1-workers',
        LaunchTemplateData: { ImageId: 'ami-12c6146b', InstanceType: 't3.micro' },
      }),
    );
    await autoscaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: 'dev1-workers',
        LaunchTemplate: { LaunchTemplateName: 'dev1-workers' },
        MinSize: 1,
        MaxSize: 2,
        DesiredCapacity: 1,
        AvailabilityZones: [`${MAIN}a`],
        Tags: Object.entries(enabled('dev1')).map(([Key, Value]) => ({ Key, Value, PropagateAtLaunch: true })),
      }),
    );
    const group = await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['dev1-workers'] }));
    const member = group.AutoScalingGroups![0]!.Instances![0]!.InstanceId!;
    const plain = await launch(enabled('dev1'));

    const stop = await aws().stopAwsResources('dev1');
    const refused = stop.resources.find((r) => r.id === member);
    assert.equal(refused?.outcome, 'unsupported');
    assert.match(refused?.detail ?? '', /managed by Auto Scaling group dev1-workers/);
    assert.equal(outcomes(stop)[plain], 'changed');
    assert.equal(await ec2State(member), 'running');
    assert.equal(
      (await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['dev1-workers'] }))).AutoScalingGroups![0]!
        .DesiredCapacity,
      1,
    );
  });

  it('a stop right after a live listing finished (a status, with the inventory unusable) lists again: it stops an instance tagged in between', async function () {
    const activities = aws({ tableName: 'devenv-missing' });
    const first = await launch(enabled('dev1'));
    assert.equal((await activities.awsStatus('dev1')).resources.length, 1);
    const added = await launch(enabled('dev1'));
    const report = await activities.stopAwsResources('dev1');
    assert.equal(outcomes(report)[added], 'changed');
    assert.equal(await ec2State(first), 'stopped');
    assert.equal(await ec2State(added), 'stopped');
  });

  it('stops again what the environment of a deleted namespace had stopped and AWS started, and reports the rest', async function () {
    const w = await world();
    await aws().stopAwsResources('dev1');
    // The namespace is deleted while stopped; seven days later RDS starts its database.
    await rds().send(new StartDBInstanceCommand({ DBInstanceIdentifier: w.db }));
    const neverStopped = await launch(enabled('dev1'));
    await aws().refreshAwsInventory();

    const report = await aws().restopOrphanedAwsResources(['dev2'], ['dev2']);
    const byId = Object.fromEntries(report.resources.map((r) => [r.id, r]));
    assert.equal(byId[w.db]?.outcome, 'changed');
    assert.equal(await dbState(w.db), 'stopped');
    assert.equal(report.restopped, 1);
    assert.equal(byId[neverStopped]?.namespace, 'dev1');
    assert.equal(byId[neverStopped]?.stoppedByScheduler, false);
    assert.equal(byId[neverStopped]?.outcome, undefined, 'not stopped by its environment: reported, not touched');
    assert.equal(await ec2State(neverStopped), 'running');
    assert.equal(byId[w.web]?.state, 'stopped');
    assert.ok(!report.resources.some((r) => r.namespace === 'dev2'), 'dev2 has an environment');
    assert.equal(await ec2State(w.other), 'running');
  });

  it('never stops again a database a person started in a namespace that still exists without an environment (left management): reports it', async function () {
    const w = await world();
    await aws().stopAwsResources('dev1');
    // dev1 left management; its restoring start could not start the database, so its stop's tag stayed. The team starts it by hand.
    await rds().send(new StartDBInstanceCommand({ DBInstanceIdentifier: w.db }));
    await aws().refreshAwsInventory();

    const report = await aws().restopOrphanedAwsResources(['dev2'], ['dev1', 'dev2', 'kube-system']);
    const db = report.resources.find((r) => r.id === w.db);
    assert.equal(db?.namespaceExists, true);
    assert.equal(db?.outcome, undefined);
    assert.equal(report.restopped, 0);
    assert.notEqual(await dbState(w.db), 'stopped');
    // Without the cluster's namespaces nothing is known to be deleted: reported, nothing stopped.
    const unsure = await aws().restopOrphanedAwsResources(['dev2']);
    assert.equal(unsure.restopped, 0);
    assert.ok(unsure.resources.some((r) => r.id === w.db));
    assert.notEqual(await dbState(w.db), 'stopped');
  });

  describe('a start that waits for its databases (wait-for-databases)', function () {
    const waiting = (overrides: Partial<AwsSettings> = {}) => aws({ databaseWait: { timeoutMs: 60_000, pollMs: 100 }, ...overrides });

    it('waits for the RDS instance and Aurora cluster the start started until AWS says available', async function () {
      const w = await world();
      await aws().stopAwsResources('dev1');
      assert.equal(await dbState(w.db), 'stopped');
      const started = await aws().startAwsResources('dev1');
      const databases = databasesStarted(started);
      assert.deepEqual(databases.map((d) => `${d.kind} ${d.id}`).sort(), [`rds-cluster ${w.aurora}`, `rds-instance ${w.db}`]);
      const activity = new MockActivityEnvironment();
      const since = new Date().toISOString();
      const done: DatabaseWait = await activity.run(() => waiting().awaitDatabases('dev1', { since, databases }));
      assert.equal(done.notAvailable, undefined);
      assert.ok(done.durationMs !== undefined && done.durationMs < 60_000, `took ${done.durationMs} ms`);
      assert.equal(await dbState(w.db), 'available');
      assert.equal(await clusterState(w.aurora), 'available');
    });

    it('at its deadline names a database that is not available, with its state', async function () {
      const db = await createDb('dev1-db', enabled('dev1'));
      const parked = await createDb('dev1-parked', enabled('dev1'));
      await rds().send(new StopDBInstanceCommand({ DBInstanceIdentifier: parked }));
      const activity = new MockActivityEnvironment();
      let heartbeats = 0;
      activity.on('heartbeat', () => heartbeats++);
      const done: DatabaseWait = await activity.run(() =>
        waiting({ databaseWait: { timeoutMs: 1500, pollMs: 100 } }).awaitDatabases('dev1', {
          since: new Date().toISOString(),
          databases: [
            { kind: 'rds-instance', id: db, region: MAIN },
            { kind: 'rds-instance', id: parked, region: MAIN },
          ],
        }),
      );
      assert.deepEqual(done.notAvailable, [{ kind: 'rds-instance', id: parked, region: MAIN, state: 'stopped' }]);
      assert.ok(done.durationMs! >= 1500, `gave up after ${done.durationMs} ms`);
      assert.ok(heartbeats > 0, 'heartbeats while it waits');
    });

    it('ends at once when cancelled (a stop came)', async function () {
      const parked = await createDb('dev1-parked', enabled('dev1'));
      await rds().send(new StopDBInstanceCommand({ DBInstanceIdentifier: parked }));
      const activity = new MockActivityEnvironment();
      const attempt = activity.run(() =>
        waiting().awaitDatabases('dev1', {
          since: new Date().toISOString(),
          databases: [{ kind: 'rds-instance', id: parked, region: MAIN }],
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const cancelledAt = Date.now();
      activity.cancel();
      await assert.rejects(attempt);
      assert.ok(Date.now() - cancelledAt < 5000, 'not waited out');
    });
  });

  it('shows each resource state for the status command', async function () {
    const w = await world();
    await aws().stopAwsResources('dev1');
    await aws().refreshAwsInventory();

    const status = await aws().awsStatus('dev1');
    assert.equal(status.source, 'cache');
    assert.deepEqual(
      status.resources.map((r) => `${r.kind} ${r.id} ${r.state} scheduler=${r.scheduler}`).sort(),
      [
        `ec2-instance ${w.web} stopped scheduler=enabled`,
        `ec2-instance ${w.worker} stopped scheduler=enabled`,
        `ec2-instance ${w.far} stopped scheduler=enabled`,
        `ec2-instance ${w.pinned} running scheduler=disabled`,
        `rds-cluster ${w.aurora} stopped scheduler=enabled`,
        `rds-instance ${w.db} stopped scheduler=enabled`,
      ].sort(),
    );
  });

  it('changes nothing in dry-run mode but says what it would do', async function () {
    const w = await world();
    const report = await aws({ dryRun: true }).stopAwsResources('dev1');
    assert.equal(outcomes(report)[w.web], 'dry-run');
    assert.equal(outcomes(report)[w.db], 'dry-run');
    assert.equal(await ec2State(w.web), 'running');
    assert.equal(await dbState(w.db), 'available');
  });

  it('lists every page of a large account', async function () {
    // One reservation per instance: moto, like EC2, pages by reservation.
    const instances = await Promise.all(Array.from({ length: 12 }, () => launch(enabled('dev3'))));
    const dbs = await Promise.all(Array.from({ length: 23 }, (_, i) => createDb(`dev3-db-${i}`, enabled('dev3'))));
    const small = aws({ pageSize: { ec2: 5, rds: 20 } });
    const report = await small.refreshAwsInventory();
    assert.equal(report.resources, 35);
    const stop = await small.stopAwsResources('dev3');
    assert.equal(stop.source, 'cache');
    assert.deepEqual(stop.resources.map((r) => r.id).sort(), [...instances, ...dbs].sort());
    assert.ok(stop.resources.every((r) => r.outcome === 'changed'));
  });

  it('credentials AWS does not accept fail stop, start and status at once, not retried, saying what to fix', async function () {
    const checking = await motoCheckingCredentials();
    const refused = aws({
      endpoint: checking.endpoint,
      credentials: { accessKeyId: 'AKIAEXPIRED0000000000', secretAccessKey: 'expired' },
      maxAttempts: 1,
    });
    for (const [name, call] of [
      ['stop', () => refused.stopAwsResources('dev1')],
      ['start', () => refused.startAwsResources('dev1')],
      ['status', () => refused.awsStatus('dev1')],
    ] as const) {
      await assert.rejects(call(), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, `${name}: expected an ApplicationFailure, got ${String(err)}`);
        assert.equal(err.nonRetryable, true, `${name}: a refusal is final`);
        assert.equal(err.type, 'AwsNotAllowed');
        assert.match(
          err.message,
          /AWS refused to list the resources of dev1 \((AuthFailure|InvalidClientTokenId): .*\): check the credentials and the IAM policy/,
        );
        return true;
      });
    }
  });

  it('manages no AWS resources, without calling AWS, when no region is configured', async function () {
    await launch(enabled('dev1'));
    const noRegions = settings({ regions: [], endpoint: 'http://127.0.0.1:9' });
    const none = createAwsActivities(noRegions);
    const report = await none.stopAwsResources('dev1');
    assert.deepEqual(report.resources, []);
    assert.match(report.notes.join(), /AWS_REGIONS/);
    assert.equal((await none.refreshAwsInventory()).resources, 0);
    assert.equal(await ensureInventoryTable(noRegions, { create: true }), 'disabled');
  });

  describe('inventory workflow on Temporal', function () {
    this.timeout(120_000);
    const timeSkippingEnv = useTimeSkippingEnv();

    async function runInventory(tableName: string) {
      const env = timeSkippingEnv();
      const taskQueue = uniqueTaskQueue('aws-inventory');
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: { ...aws({ tableName }), listRunningEnvironments: async () => ['dev2'], listNamespaceNames: async () => ['dev2'] },
      });
      return worker.runUntil(env.client.workflow.execute(awsInventoryWorkflow, { workflowId: `aws-inventory-${taskQueue}`, taskQueue }));
    }

    it('refreshes the DynamoDB inventory', async function () {
      const w = await world();
      const report = await runInventory(TABLE);
      assert.equal(report.resources, 8);
      assert.ok((await inventoryItems()).includes(`dev1 ${MAIN} rds-instance ${w.db} available scheduler=enabled`));
      // Only dev2 has an environment: dev1's resources are reported as left behind.
      assert.deepEqual(report.orphans?.resources.map((r) => r.id).sort(), [w.web, w.worker, w.far, w.pinned, w.db, w.aurora].sort());
      assert.equal(report.orphans?.restopped, 0);
    });

    it('fails at once, naming the setting, when the table is missing', async function () {
      await assert.rejects(runInventory('devenv-missing'), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        const cause = err.cause?.cause;
        assert.ok(cause instanceof ApplicationFailure, String(cause));
        assert.equal(cause.type, 'InventoryTableMissing');
        assert.match(cause.message, /INVENTORY_TABLE/);
        return true;
      });
    });
  });

  describe('through a proxy that sees every AWS call', function () {
    let proxy: Server;
    /** `service:Action` of each call, as IAM names it. */
    let calls: string[];
    /** Each call with its request body, in order. */
    let bodies: { call: string; body: string }[];
    let throttleStops: number;
    /** An EC2 error to answer a call with instead of forwarding it (the call's count so far, this one included, is `n`). */
    let refuse: ((call: string, n: number) => { status: number; code: string; message: string } | undefined) | undefined;
    /** While it returns a promise for a call, the call waits for it before it is forwarded. */
    let hold: ((call: string) => Promise<void> | undefined) | undefined;

    /** Forwards to moto, recording each call; answers the first `throttleStops` StopInstances as EC2 does when rate-limited. */
    before(async function () {
      proxy = createServer((req, res) => {
        const body: Buffer[] = [];
        req.on('data', (chunk: Buffer) => body.push(chunk));
        req.on('end', () => {
          const payload = Buffer.concat(body);
          const service = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
          const action = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? new URLSearchParams(payload.toString()).get('Action');
          const call = `${service}:${action}`;
          calls.push(call);
          bodies.push({ call, body: payload.toString() });
          const refusal = refuse?.(call, calls.filter((c) => c === call).length);
          if (refusal) {
            res.writeHead(refusal.status, { 'content-type': 'text/xml' });
            res.end(
              `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${refusal.code}</Code><Message>${refusal.message}</Message></Error></Errors><RequestID>t</RequestID></Response>`,
            );
            return;
          }
          if (action === 'StopInstances' && calls.filter((c) => c === 'ec2:StopInstances').length <= throttleStops) {
            res.writeHead(503, { 'content-type': 'text/xml' });
            res.end(
              '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>t</RequestID></Response>',
            );
            return;
          }
          const target = new URL(server.endpoint);
          void (hold?.(call) ?? Promise.resolve()).then(() => {
            const upstream = request(
              { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
              (answer) => {
                res.writeHead(answer.statusCode ?? 502, answer.headers);
                answer.pipe(res);
              },
            );
            upstream.end(payload);
          });
        });
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    });
    after(async function () {
      await new Promise((resolve) => proxy.close(resolve));
    });
    beforeEach(function () {
      calls = [];
      bodies = [];
      throttleStops = 0;
      refuse = undefined;
      hold = undefined;
    });

    const proxied = (overrides: Partial<AwsSettings> = {}) =>
      settings({ endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, ...overrides });
    const viaProxy = (overrides: Partial<AwsSettings> = {}) => createAwsActivities(proxied(overrides));
    const stopCalls = () => calls.filter((c) => c === 'ec2:StopInstances').length;

    it('makes exactly the calls that iam/policy.json allows', async function () {
      const w = await world();
      const activities = viaProxy();
      await ensureInventoryTable(proxied());
      await activities.refreshAwsInventory();
      await activities.stopAwsResources('dev1');
      await activities.startAwsResources('dev1');
      await activities.awsStatus('dev1');
      await viaProxy({ cacheMaxAgeMs: 0 }).stopAwsResources('dev2');
      await ec2().send(new TerminateInstancesCommand({ InstanceIds: [w.worker] }));
      await activities.refreshAwsInventory();
      await activities.restopOrphanedAwsResources(['dev1', 'dev2'], ['dev1', 'dev2']);
      assert.equal(await ec2State(w.web), 'running');

      const policy = JSON.parse(readFileSync(join(__dirname, '..', 'iam', 'policy.json'), 'utf8')) as { Statement: { Action: string[] }[] };
      const allowed = new Set(policy.Statement.flatMap((statement) => statement.Action));
      const made = [...new Set(calls)].sort();
      // Least privilege both ways: nothing made that the policy forbids, nothing allowed that is never made.
      assert.deepEqual(made, [...allowed].sort());
    });

    it('iam/policy.json lets the tag calls touch only the stopped-at tag: a DeleteTags or RemoveTagsFromResource naming no tag (which removes every tag) is not allowed', function () {
      type Statement = { Action: string[]; Condition?: Record<string, Record<string, string | string[]>> };
      const policy = JSON.parse(readFileSync(join(__dirname, '..', 'iam', 'policy.json'), 'utf8')) as { Statement: Statement[] };
      // IAM's own reading of the operators the policy uses: a ForAllValues test is true of a request with no tag keys at all.
      const holds = (operator: string, wanted: string | string[], value: string[] | undefined): boolean => {
        const wants = [wanted].flat();
        if (operator === 'Null') return (value === undefined) === (wants[0] === 'true');
        if (operator === 'ForAllValues:StringEquals') return (value ?? []).every((v) => wants.includes(v));
        if (operator === 'StringEquals') return value !== undefined && value.length > 0 && value.every((v) => wants.includes(v));
        throw new Error(`operator ${operator} not read by this test`);
      };
      const allowed = (action: string, context: Record<string, string[] | undefined>) =>
        policy.Statement.some(
          (s) =>
            s.Action.includes(action) &&
            Object.entries(s.Condition ?? {}).every(([operator, keys]) =>
              Object.entries(keys).every(([key, wanted]) => holds(operator, wanted, context[key])),
            ),
        );
      const onScheduled = { 'aws:ResourceTag/scheduler': ['enabled'] };
      for (const action of ['ec2:CreateTags', 'ec2:DeleteTags', 'rds:AddTagsToResource', 'rds:RemoveTagsFromResource']) {
        assert.ok(allowed(action, { ...onScheduled, 'aws:TagKeys': [STOPPED_TAG] }), `${action} of ${STOPPED_TAG}`);
        assert.ok(!allowed(action, { ...onScheduled, 'aws:TagKeys': [STOPPED_TAG, 'namespace'] }), `${action} of another tag`);
        assert.ok(
          !allowed(action, { ...onScheduled, 'aws:TagKeys': undefined }),
          `${action} naming no tag is allowed: it removes every tag of the resource`,
        );
      }
    });

    it('retries a throttled call with backoff until it goes through', async function () {
      const id = await launch(enabled('dev1'));
      throttleStops = 2;
      const report = await viaProxy({ maxAttempts: 5 }).stopAwsResources('dev1');
      assert.equal(outcomes(report)[id], 'changed');
      assert.equal(stopCalls(), 3);
      assert.equal(await ec2State(id), 'stopped');
    });

    it('fails the activity (for Temporal to retry later) when throttling persists', async function () {
      const id = await launch(enabled('dev1'));
      throttleStops = Infinity;
      await assert.rejects(viaProxy({ maxAttempts: 3 }).stopAwsResources('dev1'), { name: 'RequestLimitExceeded' });
      assert.equal(stopCalls(), 3);
      assert.equal(await ec2State(id), 'running');
    });

    const INSUFFICIENT_CAPACITY = {
      status: 500,
      code: 'InsufficientInstanceCapacity',
      message: 'We currently do not have sufficient t3.micro capacity in the Availability Zone you requested.',
    };

    it('tries an EC2 start AWS has no capacity for a bounded number of times, then reports it failed and counts it', async function () {
      const id = await launch(enabled('dev1'));
      await aws().stopAwsResources('dev1');
      const { counter, value } = outcomeCounter();
      const activities = viaProxy({ maxAttempts: 1, capacityRetryDelaysMs: [10, 10], outcomes: counter });

      refuse = (call, n) => (call === 'ec2:StartInstances' && n === 1 ? INSUFFICIENT_CAPACITY : undefined);
      const recovered = await activities.startAwsResources('dev1', { onlyStoppedByScheduler: true });
      assert.equal(outcomes(recovered)[id], 'changed', 'capacity came back at the second try');
      assert.equal(calls.filter((c) => c === 'ec2:StartInstances').length, 2);

      await aws().stopAwsResources('dev1');
      calls.length = 0;
      refuse = (call) => (call === 'ec2:StartInstances' ? INSUFFICIENT_CAPACITY : undefined);
      const report = await activities.startAwsResources('dev1', { onlyStoppedByScheduler: true });
      const result = report.resources.find((r) => r.id === id);
      assert.equal(result?.outcome, 'failed');
      assert.match(result?.detail ?? '', /InsufficientInstanceCapacity: .*tried 3 times/);
      assert.equal(calls.filter((c) => c === 'ec2:StartInstances').length, 3, 'bounded');
      assert.equal(await ec2State(id), 'stopped');
      assert.equal(await value('start', 'failed'), 1);
    });

    it('a follow-up look tries an EC2 start AWS has no capacity for once (the next look is the retry), and counts again nothing still in transition', async function () {
      const id = await launch(enabled('dev1'));
      await aws().stopAwsResources('dev1');
      const { counter, value } = outcomeCounter();
      // Delays far longer than the test's timeout: a look that waited them out would fail it.
      const activities = viaProxy({ maxAttempts: 1, capacityRetryDelaysMs: [600_000], outcomes: counter });
      calls.length = 0;
      refuse = (call) => (call === 'ec2:StartInstances' ? INSUFFICIENT_CAPACITY : undefined);
      const look = await activities.startAwsResources('dev1', { onlyStoppedByScheduler: true, followUp: true });
      assert.equal(outcomes(look)[id], 'failed');
      assert.match(look.resources.find((r) => r.id === id)?.detail ?? '', /InsufficientInstanceCapacity: .*tried again at each look/);
      assert.equal(calls.filter((c) => c === 'ec2:StartInstances').length, 1);
      assert.equal(await value('start', 'failed'), 1);

      // Still in transition (AWS says so on the call): counted by the action that found it, not again at each look.
      refuse = (call) =>
        call === 'ec2:StartInstances'
          ? { status: 400, code: 'IncorrectInstanceState', message: 'The instance is not in a state from which it can be started.' }
          : undefined;
      assert.equal(outcomes(await activities.startAwsResources('dev1', { onlyStoppedByScheduler: true }))[id], 'busy');
      assert.equal(outcomes(await activities.startAwsResources('dev1', { onlyStoppedByScheduler: true, followUp: true }))[id], 'busy');
      assert.equal(await value('start', 'busy'), 1);
    });

    it('a stop AWS refuses is reported failed and counted; one whose record cannot be written is not stopped at all', async function () {
      const web = await launch(enabled('dev1'));
      const db = await createDb('dev1-db', enabled('dev1'));
      const { counter, value } = outcomeCounter();
      refuse = (call) =>
        call === 'ec2:StopInstances'
          ? { status: 403, code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.' }
          : undefined;
      const report = await viaProxy({ outcomes: counter }).stopAwsResources('dev1');
      assert.equal(outcomes(report)[web], 'failed');
      assert.match(report.resources.find((r) => r.id === web)?.detail ?? '', /UnauthorizedOperation/);
      assert.equal(outcomes(report)[db], 'changed');
      assert.equal(await value('stop', 'failed'), 1);

      // A policy without the tagging permission: stopping what no start would start again is worse than leaving it up, loudly.
      const late = await createDb('dev1-db-late', enabled('dev1'));
      refuse = (call) =>
        call === 'rds:AddTagsToResource'
          ? { status: 403, code: 'AccessDenied', message: 'not authorized to perform: rds:AddTagsToResource' }
          : undefined;
      const unrecorded = await viaProxy({ outcomes: counter }).stopAwsResources('dev1');
      assert.equal(outcomes(unrecorded)[late], 'failed');
      assert.match(unrecorded.resources.find((r) => r.id === late)?.detail ?? '', /could not record .* so it was not stopped/);
      assert.equal(await dbState(late), 'available');
      assert.equal(outcomes(unrecorded)[web], 'changed');
      assert.equal(await value('stop', 'failed'), 2);
    });

    it('environments stopping at once while the inventory is stale share one listing of each region', async function () {
      const namespaces = Array.from({ length: 8 }, (_, i) => `dev${i + 10}`);
      const ids = new Map<string, string[]>();
      for (const ns of namespaces)
        ids.set(ns, [await launch(enabled(ns)), await createDb(`${ns}-db`, enabled(ns), ns.endsWith('1') ? SECOND : MAIN)]);
      const activities = viaProxy({ cacheMaxAgeMs: 0 });
      // "At once": on a busy machine the environments' inventory reads spread out over more
      // than a listing takes, so the listings wait until those reads have gone quiet.
      let lastInventoryRead = Date.now();
      hold = (call) => {
        if (call.startsWith('dynamodb:')) lastInventoryRead = Date.now();
        if (!/^(ec2:DescribeInstances|rds:DescribeDBInstances|rds:DescribeDBClusters)$/.test(call)) return undefined;
        return (async () => {
          while (Date.now() - lastInventoryRead < 500) await new Promise((resolve) => setTimeout(resolve, 50));
        })();
      };

      const reports = await Promise.all(namespaces.map((ns) => activities.stopAwsResources(ns)));
      for (const report of reports) {
        assert.equal(report.source, 'live');
        assert.deepEqual(
          report.resources.map((r) => `${r.id} ${r.outcome}`).sort(),
          ids
            .get(report.namespace)!
            .map((id) => `${id} changed`)
            .sort(),
        );
      }
      const listings = (call: string, byId: string) => bodies.filter((b) => b.call === call && !b.body.includes(byId)).length;
      assert.equal(
        listings('rds:DescribeDBInstances', 'db-instance-id'),
        2,
        'one listing of DB instances per region, not one per environment',
      );
      assert.equal(listings('rds:DescribeDBClusters', 'db-cluster-id'), 2);
      assert.equal(listings('ec2:DescribeInstances', 'instance-id'), 2);
    });

    it('a refresh heartbeats while it lists, and once Temporal has given it up it writes nothing more', async function () {
      await world();
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      hold = (call) => (call === 'rds:DescribeDBClusters' ? held : undefined);
      const activity = new MockActivityEnvironment();
      let heartbeats = 0;
      activity.on('heartbeat', () => heartbeats++);
      const attempt = activity.run(() => viaProxy().refreshAwsInventory());
      for (let waited = 0; !calls.includes('rds:DescribeDBClusters'); waited += 20) {
        if (waited > 20_000) throw new Error('the refresh never listed');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Its heartbeat timed out: Temporal retries it elsewhere and cancels this attempt.
      activity.cancel('TIMED_OUT');
      release();
      await assert.rejects(attempt);
      assert.ok(heartbeats > 0, 'heartbeats while it lists');
      assert.deepEqual(
        calls.filter((c) => c.startsWith('dynamodb:')),
        [],
        'nothing read or written in the table after it was given up',
      );
      assert.deepEqual(await inventoryItems(), []);
    });

    it('an older refresh that finishes after a newer one neither deletes nor overwrites what the newer wrote', async function () {
      const w = await world();
      await aws().refreshAwsInventory();
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const isWrite = (call: string) => call === 'dynamodb:PutItem' || call === 'dynamodb:BatchWriteItem';
      hold = (call) => (isWrite(call) ? held : undefined);
      // The attempt that timed out: it listed the world as it was, and its writes come late.
      const older = viaProxy().refreshAwsInventory();
      for (let waited = 0; !calls.some(isWrite); waited += 20) {
        if (waited > 20_000) throw new Error('the older refresh never wrote');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await ec2().send(new CreateTagsCommand({ Resources: [w.web], Tags: toTags({ namespace: 'dev2' }) }));
      await ec2().send(new TerminateInstancesCommand({ InstanceIds: [w.worker] }));
      // Its retry, which ran to the end meanwhile.
      const newer = await aws().refreshAwsInventory();
      assert.equal(newer.superseded, undefined);
      const written = await inventoryItems();
      assert.ok(written.includes(`dev2 ${MAIN} ec2-instance ${w.web} running scheduler=enabled`), written.join('\n'));

      release();
      const late = await older;
      assert.deepEqual(await inventoryItems(), written, 'the table is as the newer refresh left it');
      assert.equal(late.superseded, true);
    });
  });
});

describe('AWS activities registered with the worker', function () {
  // What the environment and inventory workflows call; setting up the table is for start-up and the CLI, not a workflow.
  const CALLED_BY_WORKFLOWS = [
    'awaitDatabases',
    'awsStatus',
    'refreshAwsInventory',
    'restopOrphanedAwsResources',
    'startAwsResources',
    'stopAwsResources',
  ];
  const base: AwsSettings = {
    regions: [MAIN],
    endpoint: 'http://127.0.0.1:9',
    tableName: TABLE,
    cacheMaxAgeMs: 0,
    dryRun: false,
    logger: createLogger('silent'),
  };

  it('are exactly what the workflows call, with AWS configured or not', function () {
    assert.deepEqual(Object.keys(createAwsActivities(base)).sort(), CALLED_BY_WORKFLOWS);
    assert.deepEqual(Object.keys(createAwsActivities({ ...base, regions: [] })).sort(), CALLED_BY_WORKFLOWS);
  });
});
