/**
 * Benchmark 5: 200 environments stopping at once while the AWS inventory is stale (as at
 * 19:00 after the refresh failed), against moto on loopback, through a proxy that counts
 * every AWS call. Each environment has one EC2 instance and one RDS DB instance, spread
 * over two regions. All 200 stops run in one process at once, as on one worker.
 *
 * Measured: each region listed once for all of them (the shared live listing), then each
 * environment's resources described by id and stopped.
 * Baseline, in the same run on a fresh moto account with the same resources: the same
 * activities with the listing not shared (reuse window 0), so every environment lists
 * every RDS instance and cluster and the tagged EC2 instances of every region itself, as
 * before the listing was shared. Also shown: the same 200 stops with a fresh inventory.
 */
import './support/mocha-shim';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { createAwsActivities, ensureInventoryTable } from '../src/activities/aws';
import type { AwsSettings } from '../src/activities/aws/sdk';
import { createLogger } from '../src/logger';
import { moto, MOTO_CREDENTIALS, type Moto } from '../test/support/moto';
import { runBench, type Bench } from './support/report';

const ENVIRONMENTS = Number(process.env.BENCH_AWS_ENVIRONMENTS ?? 200);
const REGIONS = ['eu-west-1', 'us-east-1'];
const TABLE = 'devenv-bench-inventory';
/** The listing calls, per environment, that the shared listing takes away must be most of them. */
const TARGET_LISTING_RATIO = 0.05;

interface Counted {
  total: number;
  listings: number;
}

/** Forwards to moto; counts every call, and separately the listings (describes without an id filter). */
async function countingProxy(server: Moto): Promise<{ endpoint: string; take(): Counted; close(): Promise<void> }> {
  let counted: Counted = { total: 0, listings: 0 };
  const target = new URL(server.endpoint);
  const proxy: Server = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (chunk: Buffer) => body.push(chunk));
    req.on('end', () => {
      const payload = Buffer.concat(body);
      const text = payload.toString();
      const action = new URLSearchParams(text).get('Action') ?? '';
      counted.total++;
      if (/^Describe(Instances|DBInstances|DBClusters)$/.test(action) && !/(instance-id|db-instance-id|db-cluster-id)/.test(text))
        counted.listings++;
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
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    take() {
      const taken = counted;
      counted = { total: 0, listings: 0 };
      return taken;
    },
    close: () => new Promise((resolve) => proxy.close(() => resolve())),
  };
}

async function world(server: Moto): Promise<void> {
  await server.reset();
  const clientConfig = (region: string) => ({ region, endpoint: server.endpoint, credentials: MOTO_CREDENTIALS });
  const ec2 = new Map(REGIONS.map((region) => [region, new EC2Client(clientConfig(region))]));
  const rds = new Map(REGIONS.map((region) => [region, new RDSClient(clientConfig(region))]));
  for (let i = 0; i < ENVIRONMENTS; i++) {
    const region = REGIONS[i % REGIONS.length]!;
    const Tags = [
      { Key: 'namespace', Value: `env${i}` },
      { Key: 'scheduler', Value: 'enabled' },
    ];
    await ec2.get(region)!.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [{ ResourceType: 'instance', Tags }],
      }),
    );
    await rds.get(region)!.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: `env${i}-db`,
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'admin',
        MasterUserPassword: 'not-a-secret-1',
        Tags,
      }),
    );
  }
}

async function stopAll(
  bench: Bench,
  label: string,
  settings: Partial<AwsSettings>,
  proxy: Awaited<ReturnType<typeof countingProxy>>,
  server: Moto,
  fresh = false,
): Promise<{ ms: number; calls: Counted }> {
  await world(server);
  const awsSettings: AwsSettings = {
    regions: REGIONS,
    endpoint: proxy.endpoint,
    credentials: MOTO_CREDENTIALS,
    tableName: TABLE,
    cacheMaxAgeMs: fresh ? 30 * 60_000 : 0,
    dryRun: false,
    logger: createLogger('silent'),
    ...settings,
  };
  const activities = createAwsActivities(awsSettings);
  await ensureInventoryTable(awsSettings, { create: true });
  if (fresh) await activities.refreshAwsInventory();
  proxy.take();
  const started = performance.now();
  const reports = await Promise.all(Array.from({ length: ENVIRONMENTS }, (_, i) => activities.stopAwsResources(`env${i}`)));
  const ms = performance.now() - started;
  const calls = proxy.take();
  const stopped = reports.reduce((sum, report) => sum + report.resources.filter((r) => r.outcome === 'changed').length, 0);
  if (stopped !== 2 * ENVIRONMENTS) throw new Error(`${label}: ${stopped} resources stopped, expected ${2 * ENVIRONMENTS}`);
  bench.progress(
    `${label}: ${ENVIRONMENTS} environments stopped in ${(ms / 1000).toFixed(1)} s with ${calls.total} AWS calls, ${calls.listings} of them listings`,
  );
  return { ms, calls };
}

runBench('aws', `${ENVIRONMENTS} environments stopping at once with a stale inventory, against moto`, async (bench) => {
  const server = await moto();
  const proxy = await countingProxy(server);
  try {
    const shared = await stopAll(bench, 'stale inventory, shared listing', {}, proxy, server);
    const unshared = await stopAll(
      bench,
      'stale inventory, each environment listing alone (baseline)',
      { shareLiveListings: false },
      proxy,
      server,
    );
    const cached = await stopAll(bench, 'fresh inventory', {}, proxy, server, true);
    bench.figure({
      name: 'listing calls (stale, shared)',
      value: shared.calls.listings,
      unit: '',
      baseline: { name: 'each environment listing alone', value: unshared.calls.listings },
      target: { op: '<=', limit: TARGET_LISTING_RATIO, on: 'ratio' },
      note: `${REGIONS.length} regions, 3 kinds: the shared listing makes ${3 * REGIONS.length} listings however many environments stop`,
    });
    bench.figure({
      name: 'AWS calls (stale, shared)',
      value: shared.calls.total,
      unit: '',
      baseline: { name: 'each environment listing alone', value: unshared.calls.total },
    });
    bench.figure({
      name: 'time for all stops (stale, shared)',
      value: Math.round(shared.ms),
      unit: 'ms',
      baseline: { name: 'each environment listing alone', value: Math.round(unshared.ms) },
    });
    bench.figure({
      name: 'AWS calls (stale, shared)',
      value: shared.calls.total,
      unit: '',
      baseline: { name: 'fresh inventory', value: cached.calls.total },
    });
    bench.figure({
      name: 'time for all stops (stale, shared)',
      value: Math.round(shared.ms),
      unit: 'ms',
      baseline: { name: 'fresh inventory', value: Math.round(cached.ms) },
    });
  } finally {
    await proxy.close();
  }
});
