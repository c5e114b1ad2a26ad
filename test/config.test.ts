import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, DEFAULT_INFRASTRUCTURE_NAMESPACES, loadConfig, type Config } from '../src/config';
import { testCa } from './support/tls';
import { DEFAULT_SUPPORT_SIZES } from '../src/domain/support-sizes';

const MON_FRI = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'];
const EVERY_DAY = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** Runs loadConfig and returns its ConfigError, failing the test if there is none. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('config: loadConfig(env)', () => {
  describe('defaults (nothing set)', () => {
    const config = loadConfig({});
    it('default policy: 19:00 UTC, Mon-Fri, no holidays, warnings 60/30/15, max prolongation 4h, after-hours window 2h', () => {
      assert.deepEqual(config.policy, {
        shutdownTime: '19:00',
        timeZone: 'UTC',
        workingDays: MON_FRI,
        holidays: [],
        warningOffsetsMinutes: [60, 30, 15],
        maxProlongationMinutes: 240,
        afterHoursWindowMinutes: 120,
      });
    });
    const fields: [string, (c: Config) => unknown, unknown][] = [
      ['resetTime', (c) => c.resetTime, '09:00'],
      ['temporal.address', (c) => c.temporal.address, undefined],
      ['temporal.namespace', (c) => c.temporal.namespace, 'default'],
      ['temporal.taskQueue', (c) => c.temporal.taskQueue, 'devenv-scheduler'],
      ['temporal.cluster', (c) => c.temporal.cluster, undefined],
      ['temporal.devServerPort', (c) => c.temporal.devServerPort, 7233],
      ['temporal.uiPort', (c) => c.temporal.uiPort, 8233],
      ['temporal.devDbFile', (c) => c.temporal.devDbFile, '.temporal-dev.db'],
      ['localCluster.mode (a local control plane only where no kubeconfig is found)', (c) => c.localCluster.mode, 'auto'],
      ['localCluster.dir', (c) => c.localCluster.dir, '.local-cluster'],
      ['apiPort', (c) => c.apiPort, 3000],
      ['dryRun', (c) => c.dryRun, false],
      ['kubernetes.concurrency', (c) => c.kubernetes.concurrency, 3],
      ['kubernetes.processConcurrency', (c) => c.kubernetes.processConcurrency, 50],
      ['worker.maxCachedWorkflows', (c) => c.worker.maxCachedWorkflows, 2000],
      ['worker.maxConcurrentActivities', (c) => c.worker.maxConcurrentActivities, 500],
      ['worker.shutdownGraceMs (2 minutes)', (c) => c.worker.shutdownGraceMs, 120_000],
      ['commandWaitMs (20 s)', (c) => c.commandWaitMs, 20_000],
      ['enrolment.shutdownDispatchAheadMs', (c) => c.enrolment.shutdownDispatchAheadMs, 10_000],
      ['role (everything in one process)', (c) => c.role, 'all'],
      ['webhook.port', (c) => c.webhook.port, 8443],
      ['webhook.tlsCert (no webhook)', (c) => c.webhook.tlsCert, undefined],
      ['enrolment.reconcileIntervalMinutes', (c) => c.enrolment.reconcileIntervalMinutes, 10],
      ['support.namespace', (c) => c.support.namespace, 'devenv-support'],
      ['support.image', (c) => c.support.image, 'debian:bookworm-slim'],
      ['support.sizes (the built-in XS..XL)', (c) => JSON.stringify(c.support.sizes), JSON.stringify(DEFAULT_SUPPORT_SIZES)],
      ['support.ttlMinutes', (c) => c.support.ttlMinutes, 480],
      ['slack.signingSecret (no /slack routes)', (c) => c.slack.signingSecret, undefined],
      ['slack.botToken (warnings to the log)', (c) => c.slack.botToken, undefined],
      ['support.maxPodsPerUser', (c) => c.support.maxPodsPerUser, 2],
      ['support.maxSize', (c) => c.support.maxSize, 'M'],
      ['slack.responseUrlOrigins (Slack only)', (c) => c.slack.responseUrlOrigins.join(','), 'https://hooks.slack.com'],
      ['slack.supportAdmins (none)', (c) => c.slack.supportAdmins.length, 0],
      ['apiSupportAdmins (none)', (c) => c.apiSupportAdmins.length, 0],
      ['logLevel', (c) => c.logLevel, 'info'],
    ];
    for (const [name, get, expected] of fields) {
      it(`${name} = ${JSON.stringify(expected)}`, () => assert.equal(get(config), expected));
    }

    it('reads only the env object it is given, and ignores unrelated variables', () => {
      assert.deepEqual(loadConfig({ PATH: '/usr/bin', HOME: '/root', SHUTDOWN_TIME_X: 'nonsense' }), config);
    });

    it('empty and blank strings fall back to the defaults', () => {
      const names = [
        'SHUTDOWN_TIME',
        'TIME_ZONE',
        'WORKING_DAYS',
        'HOLIDAYS',
        'WARNING_OFFSETS',
        'RESET_TIME',
        'MAX_PROLONGATION',
        'AFTER_HOURS_WINDOW',
        'TEMPORAL_ADDRESS',
        'TEMPORAL_NAMESPACE',
        'TASK_QUEUE',
        'CLUSTER_NAME',
        'API_PORT',
        'TEMPORAL_DEV_PORT',
        'TEMPORAL_UI_PORT',
        'TEMPORAL_DEV_DB_FILE',
        'DRY_RUN',
        'LOG_LEVEL',
        'AWS_REGIONS',
        'AWS_ENDPOINT_URL',
        'INVENTORY_TABLE',
        'INVENTORY_TABLE_REGION',
        'INVENTORY_MAX_AGE',
        'INVENTORY_INTERVAL',
        'KUBE_CONCURRENCY',
        'KUBE_WORKER_CONCURRENCY',
        'WORKFLOW_CACHE_SIZE',
        'WORKER_MAX_CONCURRENT_ACTIVITIES',
        'SHUTDOWN_DISPATCH_AHEAD_SECONDS',
        'WORKER_SHUTDOWN_GRACE_SECONDS',
        'COMMAND_WAIT_SECONDS',
        'SUPPORT_NAMESPACE',
        'SUPPORT_IMAGE',
        'SUPPORT_SIZES',
        'SUPPORT_POD_TTL',
        'SLACK_SIGNING_SECRET',
        'SLACK_BOT_TOKEN',
        'SLACK_APP_TOKEN',
        'SLACK_DEFAULT_CHANNEL',
        'SLACK_API_URL',
        'SLACK_ALLOW_READ_USERS',
        'SLACK_ALLOW_CONTROL_CHANNELS',
        'SYSTEM_NAMESPACES',
        'INFRASTRUCTURE_NAMESPACES',
        'SUPPORT_MAX_PODS_PER_USER',
        'SUPPORT_MAX_SIZE',
        'SLACK_SUPPORT_ADMINS',
        'SLACK_OWNERS_ONLY',
        'SLACK_ADMINS',
        'API_SUPPORT_ADMINS',
        'SLACK_RESPONSE_URL_ORIGINS',
      ];
      assert.deepEqual(loadConfig(Object.fromEntries(names.map((n) => [n, '']))), config);
      assert.deepEqual(loadConfig(Object.fromEntries(names.map((n) => [n, '  \t ']))), config);
    });
  });

  describe('valid values', () => {
    const cases: [env: Record<string, string>, get: (c: Config) => unknown, expected: unknown][] = [
      [
        {},
        (c) => c.aws,
        {
          regions: [],
          endpoint: undefined,
          inventoryTable: 'devenv-scheduler-inventory',
          inventoryTableRegion: undefined,
          inventoryMaxAgeMinutes: 30,
          inventoryIntervalMinutes: 10,
        },
      ],
      [{ AWS_REGIONS: 'eu-west-1, us-east-1,eu-west-1' }, (c) => c.aws.regions, ['eu-west-1', 'us-east-1']],
      [{ AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' }, (c) => c.aws.endpoint, 'http://127.0.0.1:5000'],
      [
        { INVENTORY_INTERVAL: '5m', INVENTORY_MAX_AGE: '1h' },
        (c) => [c.aws.inventoryIntervalMinutes, c.aws.inventoryMaxAgeMinutes],
        [5, 60],
      ],
      [{ SHUTDOWN_TIME: '18:30' }, (c) => c.policy.shutdownTime, '18:30'],
      [{}, (c) => 'wakeTime' in c.policy, false],
      [{ WAKE_TIME: '08:00' }, (c) => c.policy.wakeTime, '08:00'],
      [{ WAKE_TIME: '06:30', SHUTDOWN_TIME: '14:00' }, (c) => [c.policy.wakeTime, c.policy.shutdownTime], ['06:30', '14:00']],
      [{ SHUTDOWN_TIME: '00:00' }, (c) => c.policy.shutdownTime, '00:00'],
      [{ SHUTDOWN_TIME: '23:59' }, (c) => c.policy.shutdownTime, '23:59'],
      [{ SHUTDOWN_TIME: '07:05' }, (c) => c.policy.shutdownTime, '07:05'],
      [{ TIME_ZONE: 'Europe/Berlin' }, (c) => c.policy.timeZone, 'Europe/Berlin'],
      [{ TIME_ZONE: 'America/New_York' }, (c) => c.policy.timeZone, 'America/New_York'],
      [{ TIME_ZONE: 'Asia/Kolkata' }, (c) => c.policy.timeZone, 'Asia/Kolkata'],
      [{ TIME_ZONE: 'Pacific/Auckland' }, (c) => c.policy.timeZone, 'Pacific/Auckland'],
      [{ TIME_ZONE: 'UTC' }, (c) => c.policy.timeZone, 'UTC'],
      // working days come out in Mon..Sun order whatever order they were written in
      [{ WORKING_DAYS: 'Mon-Fri' }, (c) => c.policy.workingDays, MON_FRI],
      [{ WORKING_DAYS: 'Sun-Thu' }, (c) => c.policy.workingDays, ['Mon', 'Tue', 'Wed', 'Thu', 'Sun']],
      [{ WORKING_DAYS: 'Mon,Wed,Fri' }, (c) => c.policy.workingDays, ['Mon', 'Wed', 'Fri']],
      [{ WORKING_DAYS: 'Fri,Wed,Mon' }, (c) => c.policy.workingDays, ['Mon', 'Wed', 'Fri']],
      [{ WORKING_DAYS: 'Fri-Mon' }, (c) => c.policy.workingDays, ['Mon', 'Fri', 'Sat', 'Sun']],
      [{ WORKING_DAYS: 'Thu-Tue' }, (c) => c.policy.workingDays, ['Mon', 'Tue', 'Thu', 'Fri', 'Sat', 'Sun']],
      [{ WORKING_DAYS: 'Sun-Sat' }, (c) => c.policy.workingDays, EVERY_DAY],
      [{ WORKING_DAYS: 'Mon-Sun' }, (c) => c.policy.workingDays, EVERY_DAY],
      [{ WORKING_DAYS: 'Sat-Sun' }, (c) => c.policy.workingDays, ['Sat', 'Sun']],
      [{ WORKING_DAYS: 'Wed' }, (c) => c.policy.workingDays, ['Wed']],
      [{ WORKING_DAYS: 'Mon-Mon' }, (c) => c.policy.workingDays, ['Mon']],
      [{ WORKING_DAYS: 'Mon-Wed,Fri' }, (c) => c.policy.workingDays, ['Mon', 'Tue', 'Wed', 'Fri']],
      [{ WORKING_DAYS: 'Mon-Wed,Tue-Thu' }, (c) => c.policy.workingDays, ['Mon', 'Tue', 'Wed', 'Thu']],
      [{ WORKING_DAYS: 'Mon,Mon' }, (c) => c.policy.workingDays, ['Mon']],
      [{ WORKING_DAYS: ' mon - fri ' }, (c) => c.policy.workingDays, MON_FRI],
      [{ WORKING_DAYS: 'MON,tue' }, (c) => c.policy.workingDays, ['Mon', 'Tue']],
      [{ WORKING_DAYS: 'Monday-Friday' }, (c) => c.policy.workingDays, MON_FRI],
      [{ WORKING_DAYS: 'Tue,Thu,' }, (c) => c.policy.workingDays, ['Tue', 'Thu']],
      [{ HOLIDAYS: '2026-12-24' }, (c) => c.policy.holidays, ['2026-12-24']],
      [{ HOLIDAYS: '2026-12-24,2026-12-25' }, (c) => c.policy.holidays, ['2026-12-24', '2026-12-25']],
      [{ HOLIDAYS: '2026-12-25, 2026-12-24 ,2026-12-25' }, (c) => c.policy.holidays, ['2026-12-24', '2026-12-25']],
      [{ HOLIDAYS: '2027-01-01,2026-12-31' }, (c) => c.policy.holidays, ['2026-12-31', '2027-01-01']],
      [{ HOLIDAYS: '2028-02-29' }, (c) => c.policy.holidays, ['2028-02-29']],
      [{ WARNING_OFFSETS: '60,30,15' }, (c) => c.policy.warningOffsetsMinutes, [60, 30, 15]],
      [{ WARNING_OFFSETS: '15,60,30' }, (c) => c.policy.warningOffsetsMinutes, [60, 30, 15]],
      [{ WARNING_OFFSETS: '30,30,5,30' }, (c) => c.policy.warningOffsetsMinutes, [30, 5]],
      [{ WARNING_OFFSETS: ' 10 , 5 ' }, (c) => c.policy.warningOffsetsMinutes, [10, 5]],
      [{ WARNING_OFFSETS: '120,' }, (c) => c.policy.warningOffsetsMinutes, [120]],
      [{ WARNING_OFFSETS: '1' }, (c) => c.policy.warningOffsetsMinutes, [1]],
      [{ WARNING_OFFSETS: '1440' }, (c) => c.policy.warningOffsetsMinutes, [1440]],
      [{ RESET_TIME: '08:30' }, (c) => c.resetTime, '08:30'],
      [{ RESET_TIME: '00:00' }, (c) => c.resetTime, '00:00'],
      [{ MAX_PROLONGATION: '4h' }, (c) => c.policy.maxProlongationMinutes, 240],
      [{ MAX_PROLONGATION: '90m' }, (c) => c.policy.maxProlongationMinutes, 90],
      [{ MAX_PROLONGATION: '2h30m' }, (c) => c.policy.maxProlongationMinutes, 150],
      [{ MAX_PROLONGATION: '1h 15m' }, (c) => c.policy.maxProlongationMinutes, 75],
      [{ MAX_PROLONGATION: '6 hours' }, (c) => c.policy.maxProlongationMinutes, 360],
      [{ AFTER_HOURS_WINDOW: '3h' }, (c) => c.policy.afterHoursWindowMinutes, 180],
      [{ AFTER_HOURS_WINDOW: '45m' }, (c) => c.policy.afterHoursWindowMinutes, 45],
      [{ TEMPORAL_ADDRESS: 'temporal.prod.internal:7233' }, (c) => c.temporal.address, 'temporal.prod.internal:7233'],
      [{ TEMPORAL_NAMESPACE: 'devenv' }, (c) => c.temporal.namespace, 'devenv'],
      [{ TASK_QUEUE: 'devenv-q' }, (c) => c.temporal.taskQueue, 'devenv-q'],
      [{ CLUSTER_NAME: 'eu-prod-1' }, (c) => [c.temporal.cluster, c.temporal.taskQueue], ['eu-prod-1', 'eu-prod-1/devenv-scheduler']],
      [{ CLUSTER_NAME: 'eu-prod-1', TASK_QUEUE: 'devenv-q' }, (c) => c.temporal.taskQueue, 'eu-prod-1/devenv-q'],
      [{ API_PORT: '8080' }, (c) => c.apiPort, 8080],
      [{ API_PORT: '0' }, (c) => c.apiPort, 0],
      [{ API_PORT: '65535' }, (c) => c.apiPort, 65535],
      [{ TEMPORAL_DEV_PORT: '17233' }, (c) => c.temporal.devServerPort, 17233],
      [{ TEMPORAL_UI_PORT: '18233' }, (c) => c.temporal.uiPort, 18233],
      [{ TEMPORAL_DEV_DB_FILE: '/var/lib/devenv/temporal.db' }, (c) => c.temporal.devDbFile, '/var/lib/devenv/temporal.db'],
      [{ DRY_RUN: 'true' }, (c) => c.dryRun, true],
      [{ DRY_RUN: '1' }, (c) => c.dryRun, true],
      [{ DRY_RUN: 'yes' }, (c) => c.dryRun, true],
      [{ DRY_RUN: 'false' }, (c) => c.dryRun, false],
      [{ DRY_RUN: '0' }, (c) => c.dryRun, false],
      [{ DRY_RUN: 'no' }, (c) => c.dryRun, false],
      [{ LOG_LEVEL: 'debug' }, (c) => c.logLevel, 'debug'],
      [{ LOG_LEVEL: 'silent' }, (c) => c.logLevel, 'silent'],
    ];
    for (const [env, get, expected] of cases) {
      it(`${JSON.stringify(env)} -> ${JSON.stringify(expected)}`, () => {
        assert.deepEqual(get(loadConfig(env)), expected);
      });
    }

    it('sets every policy field at once', () => {
      const config = loadConfig({
        SHUTDOWN_TIME: '20:15',
        TIME_ZONE: 'Asia/Jerusalem',
        WORKING_DAYS: 'Sun-Thu',
        HOLIDAYS: '2026-04-02',
        WARNING_OFFSETS: '10,45',
        MAX_PROLONGATION: '3h',
        AFTER_HOURS_WINDOW: '90m',
      });
      assert.deepEqual(config.policy, {
        shutdownTime: '20:15',
        timeZone: 'Asia/Jerusalem',
        workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Sun'],
        holidays: ['2026-04-02'],
        warningOffsetsMinutes: [45, 10],
        maxProlongationMinutes: 180,
        afterHoursWindowMinutes: 90,
      });
    });
  });

  describe('enrolment and deployment settings', () => {
    it("system namespaces: the configured ones plus the service's own and the support namespace", () => {
      assert.deepEqual(loadConfig({}).enrolment.systemNamespaces, [
        'kube-system',
        'kube-public',
        'kube-node-lease',
        'devenv-scheduler',
        'devenv-support',
      ]);
      assert.deepEqual(loadConfig({ SYSTEM_NAMESPACES: 'kube-system, monitoring', POD_NAMESPACE: 'platform' }).enrolment.systemNamespaces, [
        'kube-system',
        'monitoring',
        'platform',
        'devenv-support',
      ]);
    });

    it('infrastructure namespaces: the built-in list, or the names and `*` patterns given instead', () => {
      const builtIn = loadConfig({}).enrolment.infrastructureNamespaces;
      assert.deepEqual(builtIn, [...DEFAULT_INFRASTRUCTURE_NAMESPACES]);
      for (const expected of [
        'default',
        'temporal*',
        'cert-manager*',
        'ingress-nginx',
        '*ingress*',
        'monitoring',
        'prometheus*',
        'grafana*',
        'argocd',
        'argo*',
        'flux-system',
        'istio-system',
        'istio-*',
        'kyverno*',
        'gatekeeper-system',
        'linkerd*',
        'kube-*',
      ]) {
        assert.ok(builtIn.includes(expected), `${expected} is built in`);
      }
      assert.deepEqual(
        loadConfig({ INFRASTRUCTURE_NAMESPACES: 'monitoring, istio-*,*-infra,monitoring,*' }).enrolment.infrastructureNamespaces,
        ['monitoring', 'istio-*', '*-infra', '*'],
      );
    });

    it('GitOps: held by default, Flux in flux-system, Argo CD only where named (its Role is opt-in); another mode, namespaces, or `*` alone for every namespace', () => {
      assert.deepEqual(loadConfig({}).kubernetes.gitops, { mode: 'hold', argocdNamespaces: [], fluxNamespaces: ['flux-system'] });
      assert.deepEqual(loadConfig({ GITOPS: 'off', ARGOCD_NAMESPACES: 'argocd, argocd-apps', FLUX_NAMESPACES: '*' }).kubernetes.gitops, {
        mode: 'off',
        argocdNamespaces: ['argocd', 'argocd-apps'],
        fluxNamespaces: ['*'],
      });
      assert.match(configError({ GITOPS: 'pause' }).message, /GITOPS="pause"/);
      assert.match(
        configError({ FLUX_NAMESPACES: 'flux-system,*' }).message,
        /FLUX_NAMESPACES="flux-system,\*": .*not namespace names: "\*"/,
      );
      assert.match(configError({ ARGOCD_NAMESPACES: 'Argo CD' }).message, /ARGOCD_NAMESPACES/);
    });

    it('docs/enrolment.md lists the built-in infrastructure namespaces as they are', () => {
      const readme = readFileSync(path.join(__dirname, '..', 'docs', 'enrolment.md'), 'utf8');
      const listed = /default these names and patterns[^\n]*\n\n```\n([^`]*)```/.exec(readme)?.[1];
      assert.ok(listed, 'the list in docs/enrolment.md');
      assert.deepEqual(listed.split(/\s+/).filter(Boolean), [...DEFAULT_INFRASTRUCTURE_NAMESPACES]);
    });

    it('the webhook needs its certificate and key together', () => {
      assert.deepEqual(loadConfig({ WEBHOOK_TLS_CERT: '/tls/tls.crt', WEBHOOK_TLS_KEY: '/tls/tls.key' }).webhook, {
        port: 8443,
        tlsCert: '/tls/tls.crt',
        tlsKey: '/tls/tls.key',
      });
      assert.deepEqual(configError({ WEBHOOK_TLS_CERT: '/tls/tls.crt' }).problems, [
        'WEBHOOK_TLS_KEY (unset): the webhook needs both WEBHOOK_TLS_CERT and WEBHOOK_TLS_KEY (files of a mounted Secret)',
      ]);
    });

    it("the webhook's callers: anyone unless a client CA is set; names only with a CA", () => {
      const tls = { WEBHOOK_TLS_CERT: '/tls/tls.crt', WEBHOOK_TLS_KEY: '/tls/tls.key' };
      assert.equal(loadConfig(tls).webhook.clientAuthentication, undefined);
      assert.deepEqual(loadConfig({ ...tls, WEBHOOK_CLIENT_CA: '/ca/ca.crt' }).webhook.clientAuthentication, {
        caFile: '/ca/ca.crt',
        names: [],
      });
      assert.deepEqual(
        loadConfig({ ...tls, WEBHOOK_CLIENT_CA: '/ca/ca.crt', WEBHOOK_CLIENT_NAMES: ' kube-apiserver-webhook-client, apiserver.example ' })
          .webhook.clientAuthentication,
        {
          caFile: '/ca/ca.crt',
          names: ['kube-apiserver-webhook-client', 'apiserver.example'],
        },
      );
      assert.deepEqual(configError({ ...tls, WEBHOOK_CLIENT_NAMES: 'kube-apiserver-webhook-client' }).problems, [
        "WEBHOOK_CLIENT_CA (unset): is required with WEBHOOK_CLIENT_NAMES: the CA that signed the apiserver's webhook client certificate",
      ]);
    });
  });

  describe('Slack and support-pod settings', () => {
    it('reads the Slack secrets, channel and allow-lists; families without a list allow everyone', () => {
      const config = loadConfig({
        SLACK_SIGNING_SECRET: 's3cr3t',
        SLACK_BOT_TOKEN: 'xoxb-1-2-abc',
        SLACK_APP_TOKEN: 'xapp-1-A0APP-1-abc',
        SLACK_DEFAULT_CHANNEL: 'C0DEFAULT01',
        SLACK_API_URL: 'http://127.0.0.1:9999/api/',
        SLACK_ALLOW_CONTROL_USERS: 'U024BE7LH, W0G9QF9C6,U024BE7LH',
        SLACK_ALLOW_SUPPORT_CHANNELS: 'C0OPS12345',
      });
      assert.deepEqual(config.slack, {
        signingSecret: 's3cr3t',
        botToken: 'xoxb-1-2-abc',
        appToken: 'xapp-1-A0APP-1-abc',
        defaultChannel: 'C0DEFAULT01',
        apiUrl: 'http://127.0.0.1:9999/api/',
        allow: { control: { users: ['U024BE7LH', 'W0G9QF9C6'] }, support: { channels: ['C0OPS12345'] } },
        supportAdmins: [],
        ownersOnly: 'off',
        admins: [],
        responseUrlOrigins: ['https://hooks.slack.com'],
      });
    });

    it('reads the owners rule: SLACK_OWNERS_ONLY off (the default) or control, and SLACK_ADMINS user ids', () => {
      assert.deepEqual([loadConfig({}).slack.ownersOnly, loadConfig({}).slack.admins], ['off', []]);
      const config = loadConfig({ SLACK_OWNERS_ONLY: 'control', SLACK_ADMINS: 'U024BE7LH, W0G9QF9C6,U024BE7LH' });
      assert.deepEqual([config.slack.ownersOnly, config.slack.admins], ['control', ['U024BE7LH', 'W0G9QF9C6']]);
    });

    it('reads the support-pod limits and admins: SLACK_SUPPORT_ADMINS user ids, API_SUPPORT_ADMINS names of API_TOKENS entries', () => {
      const config = loadConfig({
        SUPPORT_MAX_PODS_PER_USER: '5',
        SUPPORT_MAX_SIZE: 'l',
        SLACK_SUPPORT_ADMINS: 'U024BE7LH,W0G9QF9C6',
        API_TOKENS: 'ci:0123456789abcdef0123,ops:fedcba9876543210fedc',
        API_SUPPORT_ADMINS: 'ops',
      });
      assert.deepEqual([config.support.maxPodsPerUser, config.support.maxSize], [5, 'L']);
      assert.deepEqual(config.slack.supportAdmins, ['U024BE7LH', 'W0G9QF9C6']);
      assert.deepEqual(config.apiSupportAdmins, ['ops']);
    });

    it('SUPPORT_MAX_SIZE must be a size of the catalogue; a catalogue without M needs it set', () => {
      assert.deepEqual(configError({ SUPPORT_MAX_SIZE: 'XXL' }).problems, [
        'SUPPORT_MAX_SIZE="XXL": must be a size of the catalogue (XS, S, M, L, XL): the largest support pod people outside the support admins may start',
      ]);
      assert.deepEqual(configError({ SUPPORT_SIZES: 'small=500m/1Gi,big=4/8Gi' }).problems, [
        'SUPPORT_MAX_SIZE (unset): must be a size of the catalogue (SMALL, BIG): the largest support pod people outside the support admins may start',
      ]);
      assert.equal(loadConfig({ SUPPORT_SIZES: 'small=500m/1Gi,big=4/8Gi', SUPPORT_MAX_SIZE: 'small' }).support.maxSize, 'SMALL');
    });

    it('API_SUPPORT_ADMINS must name API_TOKENS entries (read-only tokens cannot start pods at all)', () => {
      const error = configError({
        API_TOKENS: 'ci:0123456789abcdef0123',
        API_READ_TOKENS: 'dash:0123456789abcdef0123',
        API_SUPPORT_ADMINS: 'ci,dash,nobody',
      });
      assert.deepEqual(error.problems, [
        'API_SUPPORT_ADMINS="ci,dash,nobody": names no API_TOKENS entry: dash, nobody (support admins are control tokens, by name)',
      ]);
    });

    it('SLACK_RESPONSE_URL_ORIGINS: origins over https, or http on the loopback interface for tests', () => {
      assert.deepEqual(
        loadConfig({ SLACK_RESPONSE_URL_ORIGINS: 'https://hooks.slack-gov.com, http://127.0.0.1:4000/,https://hooks.slack.com' }).slack
          .responseUrlOrigins,
        ['https://hooks.slack-gov.com', 'http://127.0.0.1:4000', 'https://hooks.slack.com'],
      );
      for (const bad of [
        'http://hooks.slack.com',
        'https://hooks.slack.com/commands',
        'hooks.slack.com',
        'https://hooks.slack.com?x=1',
        'ftp://127.0.0.1',
      ]) {
        assert.deepEqual(configError({ SLACK_RESPONSE_URL_ORIGINS: bad }).problems, [
          `SLACK_RESPONSE_URL_ORIGINS=${JSON.stringify(bad)}: "${bad}" is not an origin such as https://hooks.slack.com (https, no path; http only for 127.0.0.1, localhost or [::1])`,
        ]);
      }
    });

    it('REST tokens are kept as their SHA-256 only; NAME:sha256:<hex> gives the digest instead of the token', () => {
      const token = 'a-long-rest-token-0123456789';
      const digest = createHash('sha256').update(token).digest('hex');
      const config = loadConfig({ API_TOKENS: `ci:${token},deploy:sha256:${digest.toUpperCase()}`, API_READ_TOKENS: `dash:${token}x` });
      assert.deepEqual(config.apiTokens, [
        { name: 'ci', sha256: digest, scope: 'control' },
        { name: 'deploy', sha256: digest, scope: 'control' },
        { name: 'dash', sha256: createHash('sha256').update(`${token}x`).digest('hex'), scope: 'read' },
      ]);
      assert.ok(!JSON.stringify(config).includes(token), 'no token is kept in the configuration');
      assert.deepEqual(configError({ API_TOKENS: 'ci:short' }).problems, [
        "API_TOKENS (value hidden): entry 1 is not NAME:TOKEN with a token of at least 16 characters, or NAME:sha256:<the token's SHA-256 in hex>",
      ]);
    });

    it('reads support-pod sizes as NAME=CPU/MEMORY, a TTL and the namespace', () => {
      const config = loadConfig({
        SUPPORT_SIZES: 'small=500m/1Gi, XL=4/8Gi',
        SUPPORT_MAX_SIZE: 'small',
        SUPPORT_POD_TTL: '2h30m',
        SUPPORT_NAMESPACE: 'ops',
        KUBE_CONCURRENCY: '8',
      });
      assert.deepEqual(config.support.sizes, { SMALL: { cpu: '500m', memory: '1Gi' }, XL: { cpu: '4', memory: '8Gi' } });
      assert.equal(config.support.ttlMinutes, 150);
      assert.equal(config.support.namespace, 'ops');
      assert.equal(config.kubernetes.concurrency, 8);
    });

    it('reads the workflow cache size', () => {
      assert.equal(loadConfig({ WORKFLOW_CACHE_SIZE: '500' }).worker.maxCachedWorkflows, 500);
    });

    it('reads how far ahead stops are dispatched, and the activity slots', () => {
      assert.equal(loadConfig({ SHUTDOWN_DISPATCH_AHEAD_SECONDS: '0' }).enrolment.shutdownDispatchAheadMs, 0);
      assert.equal(loadConfig({ SHUTDOWN_DISPATCH_AHEAD_SECONDS: '30' }).enrolment.shutdownDispatchAheadMs, 30_000);
      assert.equal(loadConfig({ WORKER_MAX_CONCURRENT_ACTIVITIES: '2000' }).worker.maxConcurrentActivities, 2000);
    });

    it('reads the worker shutdown grace (0: activities cancelled at once) and the command wait', () => {
      assert.equal(loadConfig({ WORKER_SHUTDOWN_GRACE_SECONDS: '0' }).worker.shutdownGraceMs, 0);
      assert.equal(loadConfig({ WORKER_SHUTDOWN_GRACE_SECONDS: '600' }).worker.shutdownGraceMs, 600_000);
      assert.equal(loadConfig({ COMMAND_WAIT_SECONDS: '1' }).commandWaitMs, 1000);
      assert.equal(loadConfig({ COMMAND_WAIT_SECONDS: '300' }).commandWaitMs, 300_000);
    });

    it('a malformed bot token is refused without echoing it', () => {
      const error = configError({ SLACK_BOT_TOKEN: 'abc123-secret', SLACK_DEFAULT_CHANNEL: 'C0DEFAULT01' });
      assert.deepEqual(error.problems, ['SLACK_BOT_TOKEN (value hidden): must be a bot token (xoxb-...)']);
    });

    it('an app-level token that is not one (a bot token pasted in its place) is refused without echoing it', () => {
      const error = configError({ SLACK_APP_TOKEN: 'xoxb-1-2-secret' });
      assert.deepEqual(error.problems, [
        'SLACK_APP_TOKEN (value hidden): must be an app-level token (xapp-...) with the connections:write scope',
      ]);
    });

    it('a bot token without a default channel is refused: warnings would have nowhere to go', () => {
      const error = configError({ SLACK_BOT_TOKEN: 'xoxb-1-2-abc' });
      assert.deepEqual(error.problems, [
        'SLACK_DEFAULT_CHANNEL (unset): is required with SLACK_BOT_TOKEN: the channel for environments without their own',
      ]);
    });

    it('for the CLI, the service-only settings are neither checked nor read: it posts to no Slack and serves no webhook', () => {
      const serviceOnly = {
        SLACK_BOT_TOKEN: 'not-a-bot-token',
        WEBHOOK_TLS_CERT: '/only/the/cert.pem',
        API_TOKENS: 'short',
        SUPPORT_SIZES: 'S=500m/1Gi',
        API_PORT: 'x',
      };
      assert.ok(configError(serviceOnly).problems.length >= 3, 'the service refuses them');
      const cli = loadConfig({ ...serviceOnly, TEMPORAL_ADDRESS: 'temporal.example:7233', SUPPORT_POD_TTL: '2h' }, { for: 'cli' });
      assert.equal(cli.slack.botToken, undefined);
      assert.equal(cli.webhook.tlsCert, undefined);
      assert.deepEqual(cli.apiTokens, []);
      assert.equal(cli.temporal.address, 'temporal.example:7233');
      assert.equal(cli.support.ttlMinutes, 120);
      assert.deepEqual(Object.keys(cli.support.sizes ?? {}), ['S'], 'the catalogue support start uses is read');
      // What the CLI does read is checked as for the service.
      assert.throws(() => loadConfig({ TEMPORAL_ADDRESS: 'no port' }, { for: 'cli' }), /TEMPORAL_ADDRESS="no port": must be host:port/);
    });
  });

  describe('bad values: one ConfigError line naming the variable and saying what is wrong', () => {
    const TIME = 'must be a 24-hour time such as 19:00';
    const ZONE = 'must be an IANA time zone such as Europe/Berlin or America/New_York';
    const OFFSETS = 'must be a comma-separated list of whole minutes between 1 and 1440, e.g. 60,30,15';
    const NOT_DURATION = (text: string) => `"${text}" is not a duration; use forms such as 1h, 90m or 2h30m`;
    const cases: [name: string, value: string, expectedLine: string | RegExp][] = [
      ['SHUTDOWN_TIME', '7pm', `SHUTDOWN_TIME="7pm": ${TIME}`],
      ['SHUTDOWN_TIME', '9:00', `SHUTDOWN_TIME="9:00": ${TIME}`],
      ['SHUTDOWN_TIME', '24:00', `SHUTDOWN_TIME="24:00": ${TIME}`],
      ['SHUTDOWN_TIME', '19:60', `SHUTDOWN_TIME="19:60": ${TIME}`],
      ['SHUTDOWN_TIME', '19:00:00', `SHUTDOWN_TIME="19:00:00": ${TIME}`],
      ['SHUTDOWN_TIME', '1900', `SHUTDOWN_TIME="1900": ${TIME}`],
      ['RESET_TIME', 'morning', `RESET_TIME="morning": ${TIME}`],
      ['WAKE_TIME', '8am', `WAKE_TIME="8am": ${TIME}`],
      // At or after the shutdown it would start environments after hours every evening: refused, not given that meaning.
      ['WAKE_TIME', '19:00', 'WAKE_TIME="19:00": must be before SHUTDOWN_TIME (19:00)'],
      ['WAKE_TIME', '21:30', 'WAKE_TIME="21:30": must be before SHUTDOWN_TIME (19:00)'],
      ['TIME_ZONE', 'Mars/Olympus_Mons', `TIME_ZONE="Mars/Olympus_Mons": ${ZONE}`],
      ['TIME_ZONE', 'Europe/Berlinn', `TIME_ZONE="Europe/Berlinn": ${ZONE}`],
      ['TIME_ZONE', 'CEST', `TIME_ZONE="CEST": ${ZONE}`],
      ['WORKING_DAYS', 'Mon-Xyz', 'WORKING_DAYS="Mon-Xyz": "Mon-Xyz" is not a day; use Mon..Sun or a range like Mon-Fri'],
      ['WORKING_DAYS', 'Mon,Fir', 'WORKING_DAYS="Mon,Fir": "Fir" is not a day; use Mon..Sun or a range like Mon-Fri'],
      ['WORKING_DAYS', 'Mon,Frii', 'WORKING_DAYS="Mon,Frii": "Frii" is not a day; use Mon..Sun or a range like Mon-Fri'],
      ['WORKING_DAYS', 'Mo-Fr', 'WORKING_DAYS="Mo-Fr": "Mo-Fr" is not a day; use Mon..Sun or a range like Mon-Fri'],
      ['WORKING_DAYS', 'Mon-Wed-Fri', 'WORKING_DAYS="Mon-Wed-Fri": "Mon-Wed-Fri" is not a day; use Mon..Sun or a range like Mon-Fri'],
      ['WORKING_DAYS', 'Mon-', 'WORKING_DAYS="Mon-": "Mon-" is not a day; use Mon..Sun or a range like Mon-Fri'],
      ['WORKING_DAYS', '1-5', 'WORKING_DAYS="1-5": "1-5" is not a day; use Mon..Sun or a range like Mon-Fri'],
      ['WORKING_DAYS', ',', 'WORKING_DAYS=",": must name at least one working day'],
      ['HOLIDAYS', '24.12.2026', 'HOLIDAYS="24.12.2026": not dates in YYYY-MM-DD form: 24.12.2026'],
      ['HOLIDAYS', '2026-13-01', 'HOLIDAYS="2026-13-01": not dates in YYYY-MM-DD form: 2026-13-01'],
      ['HOLIDAYS', '2026-02-30', 'HOLIDAYS="2026-02-30": not dates in YYYY-MM-DD form: 2026-02-30'],
      ['HOLIDAYS', '2026-04-31', 'HOLIDAYS="2026-04-31": not dates in YYYY-MM-DD form: 2026-04-31'],
      ['HOLIDAYS', '2027-02-29', 'HOLIDAYS="2027-02-29": not dates in YYYY-MM-DD form: 2027-02-29'],
      ['HOLIDAYS', '2026-1-1', 'HOLIDAYS="2026-1-1": not dates in YYYY-MM-DD form: 2026-1-1'],
      [
        'HOLIDAYS',
        '2026-12-24,christmas,2026-12-26,2026-00-10',
        'HOLIDAYS="2026-12-24,christmas,2026-12-26,2026-00-10": not dates in YYYY-MM-DD form: christmas, 2026-00-10',
      ],
      ['WARNING_OFFSETS', '0', `WARNING_OFFSETS="0": ${OFFSETS}`],
      ['WARNING_OFFSETS', '-15', `WARNING_OFFSETS="-15": ${OFFSETS}`],
      ['WARNING_OFFSETS', '1441', `WARNING_OFFSETS="1441": ${OFFSETS}`],
      ['WARNING_OFFSETS', '15.5', `WARNING_OFFSETS="15.5": ${OFFSETS}`],
      ['WARNING_OFFSETS', '60,abc', `WARNING_OFFSETS="60,abc": ${OFFSETS}`],
      ['WARNING_OFFSETS', '1h,30', `WARNING_OFFSETS="1h,30": ${OFFSETS}`],
      ['WARNING_OFFSETS', ',', `WARNING_OFFSETS=",": ${OFFSETS}`],
      ['MAX_PROLONGATION', '-3h', 'MAX_PROLONGATION="-3h": "-3h" is negative; give a positive duration such as 1h, 90m or 2h30m'],
      ['MAX_PROLONGATION', '0m', 'MAX_PROLONGATION="0m": the duration must be longer than 0 minutes'],
      ['MAX_PROLONGATION', 'forever', `MAX_PROLONGATION="forever": ${NOT_DURATION('forever')}`],
      ['MAX_PROLONGATION', '240', `MAX_PROLONGATION="240": ${NOT_DURATION('240')}`],
      ['AFTER_HOURS_WINDOW', '0h', 'AFTER_HOURS_WINDOW="0h": the duration must be longer than 0 minutes'],
      ['AFTER_HOURS_WINDOW', '2 days', `AFTER_HOURS_WINDOW="2 days": ${NOT_DURATION('2 days')}`],
      ['AFTER_HOURS_WINDOW', '13h', 'AFTER_HOURS_WINDOW="13h": must be at most 12h'],
      [
        'AWS_REGIONS',
        'eu-west-1,Frankfurt',
        'AWS_REGIONS="eu-west-1,Frankfurt": not AWS regions: Frankfurt (expected names such as eu-west-1)',
      ],
      ['AWS_ENDPOINT_URL', 'localhost 5000', 'AWS_ENDPOINT_URL="localhost 5000": must be a URL such as http://127.0.0.1:5000'],
      ['INVENTORY_TABLE', 'my table!', 'INVENTORY_TABLE="my table!": must be a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)'],
      ['SLACK_API_URL', 'slack', 'SLACK_API_URL="slack": must be a URL such as https://slack.com/api/'],
      [
        'SLACK_ALLOW_CONTROL_USERS',
        'U024BE7LH,alice',
        'SLACK_ALLOW_CONTROL_USERS="U024BE7LH,alice": not Slack user ids: alice (ids start with U or W, e.g. U024BE7LH)',
      ],
      [
        'SLACK_ALLOW_READ_CHANNELS',
        '#general',
        'SLACK_ALLOW_READ_CHANNELS="#general": not Slack channel ids: #general (ids start with C or G or D, e.g. C024BE7LH)',
      ],
      ['SUPPORT_SIZES', 'XS=250m', 'SUPPORT_SIZES="XS=250m": "XS=250m" is not NAME=CPU/MEMORY, e.g. XS=250m/512Mi or XL=4/8Gi'],
      [
        'SUPPORT_SIZES',
        'XS=lots/512Mi',
        'SUPPORT_SIZES="XS=lots/512Mi": "XS=lots/512Mi" is not NAME=CPU/MEMORY, e.g. XS=250m/512Mi or XL=4/8Gi',
      ],
      ['SUPPORT_POD_TTL', '200h', 'SUPPORT_POD_TTL="200h": must be at most 168h'],
      ['SUPPORT_NAMESPACE', 'Ops_Team', 'SUPPORT_NAMESPACE="Ops_Team": must be a namespace name (a DNS-1123 label)'],
      [
        'CLUSTER_NAME',
        'eu/prod',
        'CLUSTER_NAME="eu/prod": must be a DNS label such as eu-prod-1 (lower-case letters, digits and "-", at most 63): it becomes part of workflow ids',
      ],
      ['SUPPORT_MAX_PODS_PER_USER', '0', /^SUPPORT_MAX_PODS_PER_USER="0": .*>=1/],
      ['SUPPORT_MAX_PODS_PER_USER', 'two', /^SUPPORT_MAX_PODS_PER_USER="two": .*number/],
      ['SLACK_SUPPORT_ADMINS', 'alice', 'SLACK_SUPPORT_ADMINS="alice": not Slack user ids: alice (ids start with U or W, e.g. U024BE7LH)'],
      ['SLACK_OWNERS_ONLY', 'yes', 'SLACK_OWNERS_ONLY="yes": must be off or control'],
      ['SLACK_ADMINS', 'U024BE7LH,@ana', 'SLACK_ADMINS="U024BE7LH,@ana": not Slack user ids: @ana (ids start with U or W, e.g. U024BE7LH)'],
      [
        'API_SUPPORT_ADMINS',
        'ci,bad name',
        'API_SUPPORT_ADMINS="ci,bad name": not token names: "bad name" (the NAME part of API_TOKENS entries)',
      ],
      [
        'SYSTEM_NAMESPACES',
        'kube-system,Kube_Public',
        'SYSTEM_NAMESPACES="kube-system,Kube_Public": not namespace names: "Kube_Public" (lower-case letters, digits and "-", e.g. kube-system)',
      ],
      [
        'SYSTEM_NAMESPACES',
        'kube-*',
        'SYSTEM_NAMESPACES="kube-*": not namespace names: "kube-*" (lower-case letters, digits and "-", e.g. kube-system)',
      ],
      [
        'INFRASTRUCTURE_NAMESPACES',
        'monitoring,Istio-*,cert_manager,-x,a/b',
        'INFRASTRUCTURE_NAMESPACES="monitoring,Istio-*,cert_manager,-x,a/b": not namespace names or patterns: "Istio-*", "cert_manager", "-x", "a/b" (lower-case letters, digits and "-", with "*" for any characters, e.g. monitoring,istio-*)',
      ],
      ['INFRASTRUCTURE_NAMESPACES', 'x'.repeat(64), /^INFRASTRUCTURE_NAMESPACES="x{64}": not namespace names or patterns: "x{64}"/],
      ['KUBE_CONCURRENCY', '0', /^KUBE_CONCURRENCY="0": .*1/],
      ['KUBE_WORKER_CONCURRENCY', '0', /^KUBE_WORKER_CONCURRENCY="0": .*>=1/],
      ['KUBE_WORKER_CONCURRENCY', '5000', /^KUBE_WORKER_CONCURRENCY="5000": .*<=1000/],
      ['WORKFLOW_CACHE_SIZE', '1', /^WORKFLOW_CACHE_SIZE="1": .*2/],
      ['WORKFLOW_CACHE_SIZE', 'lots', /^WORKFLOW_CACHE_SIZE="lots": .*number/],
      ['WORKER_MAX_CONCURRENT_ACTIVITIES', '0', /^WORKER_MAX_CONCURRENT_ACTIVITIES="0": .*>=1/],
      ['SHUTDOWN_DISPATCH_AHEAD_SECONDS', '45', /^SHUTDOWN_DISPATCH_AHEAD_SECONDS="45": .*<=30/],
      ['SHUTDOWN_DISPATCH_AHEAD_SECONDS', '-1', /^SHUTDOWN_DISPATCH_AHEAD_SECONDS="-1": .*>=0/],
      ['SHUTDOWN_DISPATCH_AHEAD_SECONDS', '2.5', /^SHUTDOWN_DISPATCH_AHEAD_SECONDS="2.5": .*expected int/],
      ['WORKER_SHUTDOWN_GRACE_SECONDS', '-1', /^WORKER_SHUTDOWN_GRACE_SECONDS="-1": .*>=0/],
      ['WORKER_SHUTDOWN_GRACE_SECONDS', '2m', /^WORKER_SHUTDOWN_GRACE_SECONDS="2m": .*number/],
      ['WORKER_SHUTDOWN_GRACE_SECONDS', '7200', /^WORKER_SHUTDOWN_GRACE_SECONDS="7200": .*<=3600/],
      ['COMMAND_WAIT_SECONDS', '0', /^COMMAND_WAIT_SECONDS="0": .*>=1/],
      ['COMMAND_WAIT_SECONDS', '301', /^COMMAND_WAIT_SECONDS="301": .*<=300/],
      ['COMMAND_WAIT_SECONDS', '1.5', /^COMMAND_WAIT_SECONDS="1.5": .*expected int/],
      ['SERVICE_ROLE', 'both', /^SERVICE_ROLE="both": .*"all".*"api".*"worker"/],
      ['RECONCILE_INTERVAL', '-5m', 'RECONCILE_INTERVAL="-5m": "-5m" is negative; give a positive duration such as 1h, 90m or 2h30m'],
      ['API_PORT', '70000', /^API_PORT="70000": .*65535/],
      ['API_PORT', 'http', /^API_PORT="http": .*number/],
      ['API_PORT', '80.5', /^API_PORT="80\.5": .*int/],
      ['API_PORT', '-1', /^API_PORT="-1": .*0/],
      ['TEMPORAL_DEV_PORT', '99999', /^TEMPORAL_DEV_PORT="99999": .*65535/],
      ['TEMPORAL_UI_PORT', 'ui', /^TEMPORAL_UI_PORT="ui": .*number/],
      ['DRY_RUN', 'maybe', /^DRY_RUN="maybe": .*"true".*"false"/],
      ['LOCAL_CLUSTER', 'on', /^LOCAL_CLUSTER="on": .*"auto".*"off"/],
      ['LOG_LEVEL', 'verbose', /^LOG_LEVEL="verbose": .*"debug"/],
    ];
    for (const [name, value, expectedLine] of cases) {
      it(`${name}=${JSON.stringify(value)}`, () => {
        const error = configError({ [name]: value });
        assert.equal(error.name, 'ConfigError');
        assert.equal(error.problems.length, 1, error.message);
        const [line] = error.problems;
        if (typeof expectedLine === 'string') assert.equal(line, expectedLine);
        else assert.match(line!, expectedLine);
        assert.equal(error.message, `Invalid configuration:\n  - ${line}`);
      });
    }

    it('several bad values give one line each, in variable order, and good values add none', () => {
      const error = configError({
        SHUTDOWN_TIME: '7pm',
        TIME_ZONE: 'Nowhere/Special',
        WORKING_DAYS: 'Mon-Fri',
        HOLIDAYS: '2026-02-30',
        WARNING_OFFSETS: '0',
        RESET_TIME: '09:00',
        MAX_PROLONGATION: '-1h',
        DRY_RUN: 'maybe',
      });
      assert.deepEqual(
        error.problems.map((line) => line.slice(0, line.indexOf('='))),
        ['SHUTDOWN_TIME', 'TIME_ZONE', 'HOLIDAYS', 'WARNING_OFFSETS', 'MAX_PROLONGATION', 'DRY_RUN'],
      );
      assert.deepEqual(error.problems.slice(0, 5), [
        `SHUTDOWN_TIME="7pm": ${TIME}`,
        `TIME_ZONE="Nowhere/Special": ${ZONE}`,
        'HOLIDAYS="2026-02-30": not dates in YYYY-MM-DD form: 2026-02-30',
        `WARNING_OFFSETS="0": ${OFFSETS}`,
        'MAX_PROLONGATION="-1h": "-1h" is negative; give a positive duration such as 1h, 90m or 2h30m',
      ]);
      assert.equal(error.message.split('\n').length, 1 + error.problems.length);
      assert.equal(error.message.split('\n')[0], 'Invalid configuration:');
    });

    it('a blank bad-looking value is not an error (it means unset)', () => {
      assert.equal(loadConfig({ SHUTDOWN_TIME: ' ', TIME_ZONE: '' }).policy.shutdownTime, '19:00');
    });
  });

  describe('the Temporal connection: TEMPORAL_* variables and temporal.toml profiles, as the temporal CLI reads them', () => {
    const ca = testCa('config-test-ca');
    const client = ca.client('devenv-config');
    const other = testCa('config-other-ca').client('other');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-config-profile-'));
    const toml = path.join(dir, 'temporal.toml');
    writeFileSync(
      toml,
      [
        '[profile.default]',
        'address = "temporal.internal:7233"',
        'namespace = "devenv"',
        '[profile.cloud]',
        'address = "devenv.a1b2c.tmprl.cloud:7233"',
        'namespace = "devenv.a1b2c"',
        'api_key = "cloud-key-from-the-profile-0123"',
        '[profile.mtls]',
        'address = "temporal.internal:7233"',
        '[profile.mtls.tls]',
        `client_cert_path = "${client.certFile}"`,
        `client_key_path = "${client.keyFile}"`,
        `server_ca_cert_path = "${ca.caFile}"`,
        'server_name = "temporal.internal"',
        '',
      ].join('\n'),
    );

    it('nothing set: plaintext, no address (the local dev server), namespace default', () => {
      const { temporal } = loadConfig({});
      assert.deepEqual(
        [temporal.address, temporal.namespace, temporal.security, temporal.connection.tls, temporal.connection.apiKey],
        [undefined, 'default', 'plaintext', undefined, undefined],
      );
    });

    it('a profile gives address and namespace; the variables override it, as in the temporal CLI', () => {
      const fromFile = loadConfig({ TEMPORAL_CONFIG_FILE: toml }).temporal;
      assert.deepEqual(
        [fromFile.address, fromFile.namespace, fromFile.profileSource],
        ['temporal.internal:7233', 'devenv', `profile "default" of ${toml}`],
      );
      const overridden = loadConfig({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_NAMESPACE: 'other' }).temporal;
      assert.deepEqual([overridden.address, overridden.namespace], ['temporal.internal:7233', 'other']);
      // The default place: $XDG_CONFIG_HOME/temporalio/temporal.toml.
      const xdg = mkdtempSync(path.join(os.tmpdir(), 'devenv-config-xdg-'));
      mkdirSync(path.join(xdg, 'temporalio'));
      writeFileSync(path.join(xdg, 'temporalio', 'temporal.toml'), readFileSync(toml, 'utf8'));
      assert.equal(loadConfig({ XDG_CONFIG_HOME: xdg }).temporal.address, 'temporal.internal:7233');
    });

    it('an API key (Temporal Cloud) turns TLS on and is never shown', () => {
      const cloud = loadConfig({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'cloud' }).temporal;
      assert.equal(cloud.connection.apiKey, 'cloud-key-from-the-profile-0123');
      assert.equal(cloud.connection.tls, true);
      assert.equal(cloud.security, 'TLS, API key');
      const fromEnv = loadConfig({ TEMPORAL_ADDRESS: 'x.tmprl.cloud:7233', TEMPORAL_API_KEY: 'env-key-0123456789' }).temporal;
      assert.equal(fromEnv.connection.apiKey, 'env-key-0123456789');
      assert.doesNotMatch(JSON.stringify({ security: fromEnv.security, source: fromEnv.profileSource }), /env-key/);
    });

    it('mTLS from a profile: certificate, key and CA read at start-up, the server name kept; the banner names the certificate', () => {
      const mtls = loadConfig({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'mtls' }).temporal;
      const tls = mtls.connection.tls as {
        serverNameOverride?: string;
        serverRootCACertificate?: Uint8Array;
        clientCertPair?: { crt: Uint8Array; key: Uint8Array };
      };
      assert.equal(tls.serverNameOverride, 'temporal.internal');
      assert.deepEqual(Buffer.from(tls.serverRootCACertificate!), readFileSync(ca.caFile));
      assert.deepEqual(Buffer.from(tls.clientCertPair!.crt), readFileSync(client.certFile));
      assert.equal(mtls.security, `mTLS (client certificate CN=devenv-config), server CA from ${ca.caFile}, server name temporal.internal`);
    });

    const refused: [string, NodeJS.ProcessEnv, RegExp][] = [
      [
        'a config file that is not there',
        { TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml' },
        /^TEMPORAL_CONFIG_FILE="\/nonexistent\/temporal\.toml": no such file$/,
      ],
      [
        'a profile the file does not have',
        { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' },
        /^TEMPORAL_PROFILE="prod": Profile 'prod' not found/,
      ],
      [
        'a certificate without its key',
        { TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS_CLIENT_CERT_PATH: client.certFile },
        /^TEMPORAL_TLS_CLIENT_KEY_PATH or _DATA \(client_key_path in a profile\): a client certificate and its key go together/,
      ],
      [
        "a key that is not the certificate's",
        { TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS_CLIENT_CERT_PATH: client.certFile, TEMPORAL_TLS_CLIENT_KEY_PATH: other.keyFile },
        /is not the key of the client certificate \(CN=devenv-config\)/,
      ],
      [
        'a certificate file that cannot be read',
        { TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/nonexistent/ca.crt' },
        /^TEMPORAL_TLS_SERVER_CA_CERT_PATH or _DATA .*: cannot read \/nonexistent\/ca\.crt: ENOENT/,
      ],
      [
        'a CA file that is no certificate',
        { TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: toml },
        /^TEMPORAL_TLS_SERVER_CA_CERT_PATH or _DATA .*: not a PEM certificate$/,
      ],
      [
        'TLS settings without an address',
        { TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.caFile },
        /^TEMPORAL_ADDRESS \(unset\): TLS and API key settings are for a Temporal cluster/,
      ],
      [
        'an API key with TLS turned off',
        { TEMPORAL_ADDRESS: 't:7233', TEMPORAL_API_KEY: 'secret-key-0123456789', TEMPORAL_TLS: 'false' },
        /^TEMPORAL_API_KEY: would be sent in clear/,
      ],
      [
        'host verification turned off',
        { TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS: 'true', TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' },
        /^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: not supported/,
      ],
      [
        'an address that is not host:port',
        { TEMPORAL_ADDRESS: 'https://temporal.internal' },
        /^TEMPORAL_ADDRESS="https:\/\/temporal\.internal": must be host:port/,
      ],
      [
        'an API key given as the wrong kind of value, without echoing it',
        { TEMPORAL_ADDRESS: 't:7233', TEMPORAL_API_KEY: 'secret-key-0123456789', TEMPORAL_TLS: 'off' },
        /^TEMPORAL_TLS="off": must be true or false$/,
      ],
      [
        'TEMPORAL_TLS neither true nor false',
        { TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS: 'yes please' },
        /^TEMPORAL_TLS="yes please": must be true or false$/,
      ],
    ];
    for (const [what, env, expected] of refused) {
      it(`refuses ${what}, naming the setting, without showing a secret`, () => {
        const error = configError(env);
        assert.ok(
          error.problems.some((p) => expected.test(p)),
          error.problems.join('\n'),
        );
        assert.doesNotMatch(error.message, /secret-key|PRIVATE KEY/);
      });
    }
  });

  describe('savings prices', () => {
    it('none set: no prices, so the savings have no cost, and no weekly summary', () => {
      assert.deepEqual(loadConfig({}).savings, { prices: {}, summary: null });
    });

    it('reads the prices per vCPU-hour, GiB-hour and instance type, and the currency', () => {
      const config = loadConfig({
        SAVINGS_PRICE_VCPU_HOUR: '0.0316',
        SAVINGS_PRICE_GIB_HOUR: '0.0042',
        SAVINGS_PRICE_INSTANCE_TYPES: '{"t3.medium":0.0416,"rds db.t3.micro":0.017}',
        SAVINGS_CURRENCY: 'EUR',
      });
      assert.deepEqual(config.savings.prices, {
        vcpuHour: 0.0316,
        gibHour: 0.0042,
        instanceTypes: { 't3.medium': 0.0416, 'rds db.t3.micro': 0.017 },
        currency: 'EUR',
      });
    });

    const refused: [NodeJS.ProcessEnv, RegExp][] = [
      [{ SAVINGS_PRICE_VCPU_HOUR: 'cheap' }, /SAVINGS_PRICE_VCPU_HOUR="cheap": must be a number, the price of one hour/],
      [{ SAVINGS_PRICE_GIB_HOUR: '-1' }, /SAVINGS_PRICE_GIB_HOUR="-1": must be 0 or more/],
      [{ SAVINGS_PRICE_INSTANCE_TYPES: 't3.medium=0.04' }, /SAVINGS_PRICE_INSTANCE_TYPES="t3.medium=0.04": is not JSON/],
      [{ SAVINGS_PRICE_INSTANCE_TYPES: '[0.04]' }, /must be a JSON object of instance type to price per hour/],
      [{ SAVINGS_PRICE_INSTANCE_TYPES: '{"t3.medium":"0.04"}' }, /the price of t3.medium must be a number, 0 or more, not "0.04"/],
      [{ SAVINGS_PRICE_INSTANCE_TYPES: '{"T3 Medium!":1}' }, /"T3 Medium!" is not an instance type/],
      [{ SAVINGS_CURRENCY: 'euro dollars' }, /SAVINGS_CURRENCY="euro dollars": must be a currency code or sign/],
    ];
    for (const [env, message] of refused) {
      it(`refuses ${JSON.stringify(env)} with a clear message`, () => {
        assert.match(configError(env).message, message);
      });
    }
  });
});
