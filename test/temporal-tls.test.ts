/**
 * Every way teams connect to Temporal, against a real TLS endpoint: a Temporal dev server
 * of this suite's own behind a TLS-terminating gRPC proxy (test/support/temporal-tls-proxy.ts)
 * that requires a client certificate from the test CA (mTLS, as a self-hosted cluster),
 * and a second one that checks the API key in the `authorization` metadata (as Temporal
 * Cloud). The worker and the API (each a real `npm start` process of its own role) and
 * the `devenv` CLI connect through them; without the certificate, with one from another
 * CA, trusting no CA, or with a wrong API key, each is refused at start-up with one line
 * that says why, and never prints a secret.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDevServer, type DevServer } from '../src/temporal/dev-server';
import { testCluster } from './support/kube';
import { freePort, startService, waitFor } from './support/service';
import { startTlsProxy, type TlsProxy } from './support/temporal-tls-proxy';
import { testCa, type TestCa } from './support/tls';

const DEVENV = path.join(__dirname, '..', 'bin', 'devenv.js');
const API_KEY = 'tmprl-test-api-key-0123456789abcdef';
const REST_TOKEN = 'tls-test-rest-token-0123456789';
/** A home without a temporal.toml. */
const EMPTY_HOME = mkdtempSync(path.join(tmpdir(), 'devenv-home-'));

/** Only what a test sets: nothing of this machine's TEMPORAL_* or temporal.toml. */
function cleanEnv(settings: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TEMPORAL_')));
  return { ...env, HOME: EMPTY_HOME, XDG_CONFIG_HOME: '', LOG_LEVEL: 'info', ...settings };
}

/**
 * The CLI's exit code and output. grpc-js warns (DEP0123) when TLS goes to an IP address, as
 * the proxy is reached here; a cluster is addressed by name, so that line is left out.
 */
function devenv(settings: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [DEVENV, ...args],
      { env: cleanEnv({ LOG_LEVEL: 'silent', ...settings }), timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number(error.code) : 0,
          stdout,
          stderr: stderr
            .split('\n')
            .filter((line) => !/\[DEP0123\]|--trace-deprecation/.test(line))
            .join('\n'),
        }),
    );
  });
}

/** Starts the service with `settings` and waits until it is ready or has exited. */
async function service(settings: NodeJS.ProcessEnv): Promise<ReturnType<typeof startService>> {
  const started = startService(cleanEnv({ TEMPORAL_METRICS_PORT: 'off', API_PORT: String(await freePort()), ...settings }));
  await waitFor(
    'the ready banner or an exit',
    () => started.output().includes('devenv-scheduler ready') || started.child.exitCode !== null,
    150_000,
  );
  return started;
}

async function stop({ child }: ReturnType<typeof startService>): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

describe('Temporal over TLS: mTLS and API keys, for the worker, the API and the CLI', function () {
  this.timeout(240_000);
  let dev: DevServer;
  let ca: TestCa;
  let otherCa: TestCa;
  let mtls: TlsProxy;
  let keyed: TlsProxy;
  let kubeconfig: string;
  const clients: Record<'worker' | 'api' | 'cli' | 'intruder', { certFile: string; keyFile: string }> = {} as never;

  before(async function () {
    this.timeout(120_000);
    kubeconfig = (await testCluster()).kubeConfigPath;
    const [port, uiPort] = [await freePort(), await freePort()];
    dev = await startDevServer({
      port,
      uiPort,
      dbFile: path.join(mkdtempSync(path.join(tmpdir(), 'devenv-tls-')), 'temporal.db'),
      namespace: 'default',
    });
    ca = testCa('devenv-test-temporal-ca');
    otherCa = testCa('some-other-ca');
    // The proxy's certificate names temporal.test and 127.0.0.1: reached by IP, and by name through TEMPORAL_TLS_SERVER_NAME.
    const server = ca.server('temporal', ['temporal.test', 'IP:127.0.0.1']);
    for (const role of ['worker', 'api', 'cli'] as const) clients[role] = ca.client(`devenv-${role}`);
    clients.intruder = otherCa.client('devenv-intruder');
    mtls = await startTlsProxy({ upstream: dev.address, ...server, clientCaFile: ca.caFile });
    keyed = await startTlsProxy({ upstream: dev.address, ...server, apiKey: API_KEY });
  });

  after(async function () {
    await mtls?.close();
    await keyed?.close();
    await dev?.stop();
  });

  const mtlsSettings = (who: keyof typeof clients): NodeJS.ProcessEnv => ({
    TEMPORAL_ADDRESS: `127.0.0.1:${mtls.port}`,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.caFile,
    TEMPORAL_TLS_CLIENT_CERT_PATH: clients[who].certFile,
    TEMPORAL_TLS_CLIENT_KEY_PATH: clients[who].keyFile,
  });

  it('mTLS: the worker and the API, each in its own process with its own certificate, connect and work; the banner says what is in use', async function () {
    const worker = await service({ ...mtlsSettings('worker'), SERVICE_ROLE: 'worker', KUBECONFIG: kubeconfig, DRY_RUN: 'true' });
    const api = await service({ ...mtlsSettings('api'), SERVICE_ROLE: 'api', KUBECONFIG: kubeconfig, API_TOKENS: `ops:${REST_TOKEN}` });
    try {
      for (const [role, started] of [
        ['worker', worker],
        ['api', api],
      ] as const) {
        assert.equal(started.child.exitCode, null, `${role} exited:\n${started.output()}`);
        assert.match(
          started.output(),
          new RegExp(
            `Temporal +127\\.0\\.0\\.1:${mtls.port} \\(namespace default\\), mTLS \\(client certificate CN=devenv-${role}\\), server CA from ${ca.caFile.replace(/[.]/g, '\\.')}`,
          ),
        );
        assert.match(started.output(), /"temporalSecurity":"mTLS \(client certificate CN=devenv-/);
      }
      // The worker runs the start-up reconcile (a workflow on its task queue) through the proxy.
      await waitFor(
        'the dry-run plan in the worker log',
        () => /reconciler \(dry run\): planned, nothing changed/.test(worker.output()),
        60_000,
      );
      assert.ok(
        mtls.calls.some((c) => c.cn === 'devenv-worker' && c.method === 'PollWorkflowTaskQueue'),
        'the worker polls through the proxy with its certificate',
      );

      // The API answers from Temporal through the proxy.
      const apiPort = /API +http:\/\/127\.0\.0\.1:(\d+)/.exec(api.output())![1];
      const ready = await fetch(`http://127.0.0.1:${apiPort}/readyz`);
      assert.deepEqual(await ready.json(), { status: 'ready', temporal: 'reachable' });
      const list = await fetch(`http://127.0.0.1:${apiPort}/api/v1/environments`, { headers: { authorization: `Bearer ${REST_TOKEN}` } });
      assert.equal(list.status, 200, await list.clone().text());
      assert.ok(
        mtls.calls.some((c) => c.cn === 'devenv-api'),
        'the API calls through the proxy with its certificate',
      );
      for (const output of [worker.output(), api.output()]) assert.doesNotMatch(output, /PRIVATE KEY/);

      // Environment counts come from the worker role alone, so a sum over the pods of both roles counts each once.
      const workerPort = /API +http:\/\/127\.0\.0\.1:(\d+)/.exec(worker.output())![1];
      assert.match(
        await (await fetch(`http://127.0.0.1:${workerPort}/metrics`)).text(),
        /^devenv_environments\{phase="running"[^}]*\} 0$/m,
      );
      assert.doesNotMatch(await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text(), /^devenv_environments/m);
    } finally {
      await stop(worker);
      await stop(api);
    }
  });

  it('mTLS: the CLI connects with its certificate, by IP and by the server name of TEMPORAL_TLS_SERVER_NAME, and from a temporal.toml profile', async function () {
    const byIp = await devenv(mtlsSettings('cli'), 'list');
    assert.equal(byIp.code, 0, byIp.stderr);
    assert.ok(mtls.calls.some((c) => c.cn === 'devenv-cli'));
    const byName = await devenv({ ...mtlsSettings('cli'), TEMPORAL_TLS_SERVER_NAME: 'temporal.test' }, 'list');
    assert.equal(byName.code, 0, byName.stderr);

    const dir = mkdtempSync(path.join(tmpdir(), 'devenv-profile-'));
    const file = path.join(dir, 'temporal.toml');
    writeFileSync(
      file,
      [
        '[profile.staging]',
        `address = "127.0.0.1:${mtls.port}"`,
        'namespace = "default"',
        '[profile.staging.tls]',
        `client_cert_path = "${clients.cli.certFile}"`,
        `client_key_path = "${clients.cli.keyFile}"`,
        `server_ca_cert_path = "${ca.caFile}"`,
        'server_name = "temporal.test"',
        '',
      ].join('\n'),
    );
    const fromProfile = await devenv({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' }, 'list');
    assert.equal(fromProfile.code, 0, fromProfile.stderr);
    // The same file in the default place ($XDG_CONFIG_HOME/temporalio/temporal.toml), as the temporal CLI keeps it.
    const xdg = mkdtempSync(path.join(tmpdir(), 'devenv-xdg-'));
    mkdirSync(path.join(xdg, 'temporalio'));
    writeFileSync(
      path.join(xdg, 'temporalio', 'temporal.toml'),
      readFileSync(file, 'utf8').replaceAll('profile.staging', 'profile.default'),
    );
    const fromDefault = await devenv({ XDG_CONFIG_HOME: xdg }, 'list');
    assert.equal(fromDefault.code, 0, fromDefault.stderr);
    const unknown = await devenv({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' }, 'list');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /TEMPORAL_PROFILE="prod": Profile 'prod' not found/);
  });

  it('mTLS refusals: no client certificate, one from another CA, an untrusted server, a wrong server name: one line each, why, exit 1', async function () {
    const address = `127.0.0.1:${mtls.port}`;
    const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
      [
        'no client certificate',
        { TEMPORAL_ADDRESS: address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.caFile },
        /requires a client certificate \(tlsv13 alert certificate required\): set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH$/,
      ],
      ['a certificate of another CA', mtlsSettings('intruder'), /closed the TLS connection: it refused this client's certificate/],
      [
        'no server CA',
        { ...mtlsSettings('cli'), TEMPORAL_TLS_SERVER_CA_CERT_PATH: '' },
        /its server certificate is not trusted \(self-signed certificate in certificate chain\); give the CA that issued it in TEMPORAL_TLS_SERVER_CA_CERT_PATH$/,
      ],
      [
        'a wrong server name',
        { ...mtlsSettings('cli'), TEMPORAL_TLS_SERVER_NAME: 'elsewhere.test' },
        /its server certificate is not for this name .*set TEMPORAL_TLS_SERVER_NAME to the name it carries$/,
      ],
    ];
    for (const [what, settings, expected] of cases) {
      const began = Date.now();
      const { code, stdout, stderr } = await devenv(settings, 'list');
      assert.equal(code, 1, `${what}: ${stdout}${stderr}`);
      assert.equal(stderr.trim().split('\n').length, 1, `${what}: one line\n${stderr}`);
      assert.match(stderr.trim(), new RegExp(`^devenv: Temporal at ${address.replace(/\./g, '\\.')}`), what);
      assert.match(stderr.trim(), expected, what);
      assert.ok(Date.now() - began < 20_000, `${what}: refused at once, not after retries`);
    }

    // The service: refused at start-up, one line, exit 1, nothing else started; the worker role and the API role alike.
    for (const role of ['worker', 'api']) {
      const started = await service({
        TEMPORAL_ADDRESS: address,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.caFile,
        SERVICE_ROLE: role,
        KUBECONFIG: kubeconfig,
      });
      const [code] = started.child.exitCode !== null ? [started.child.exitCode] : ((await once(started.child, 'exit')) as [number]);
      assert.equal(code, 1, started.output());
      const fatal = started
        .output()
        .split('\n')
        .filter((line) => /"level":60/.test(line));
      assert.equal(fatal.length, 1, started.output());
      assert.match(
        fatal[0]!,
        /"msg":"devenv-scheduler cannot start: Temporal at 127\.0\.0\.1:\d+ requires a client certificate \(tlsv13 alert certificate required\): set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH"/,
      );
      assert.doesNotMatch(started.output(), /devenv-scheduler ready|"stack"/);
    }
  });

  it('API key (as Temporal Cloud): worker, API and CLI connect with it; a wrong key is refused at start-up with one line; the key is never printed', async function () {
    const settings = {
      TEMPORAL_ADDRESS: `127.0.0.1:${keyed.port}`,
      TEMPORAL_API_KEY: API_KEY,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.caFile,
    };
    const all = await service({ ...settings, KUBECONFIG: kubeconfig, DRY_RUN: 'true' });
    try {
      assert.equal(all.child.exitCode, null, all.output());
      assert.match(
        all.output(),
        new RegExp(`Temporal +127\\.0\\.0\\.1:${keyed.port} \\(namespace default\\), TLS, API key, server CA from `),
      );
      await waitFor('the dry-run plan in the log', () => /reconciler \(dry run\): planned, nothing changed/.test(all.output()), 60_000);
      assert.ok(
        keyed.calls.some((c) => c.method === 'PollWorkflowTaskQueue'),
        'the worker polls with the key',
      );
      const cli = await devenv(settings, 'list');
      assert.equal(cli.code, 0, cli.stderr);
      assert.doesNotMatch(all.output(), new RegExp(API_KEY));
    } finally {
      await stop(all);
    }

    const wrong = { ...settings, TEMPORAL_API_KEY: 'tmprl-a-revoked-key-000000000000' };
    const refused = await devenv(wrong, 'list');
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr.trim(),
      `devenv: Temporal at 127.0.0.1:${keyed.port} refused the API key (TEMPORAL_API_KEY): Request unauthorized: invalid API key`,
    );
    const started = await service({ ...wrong, KUBECONFIG: kubeconfig });
    const [code] = started.child.exitCode !== null ? [started.child.exitCode] : ((await once(started.child, 'exit')) as [number]);
    assert.equal(code, 1, started.output());
    assert.match(
      started.output(),
      /"msg":"devenv-scheduler cannot start: Temporal at 127\.0\.0\.1:\d+ refused the API key \(TEMPORAL_API_KEY\): Request unauthorized: invalid API key"/,
    );
    assert.doesNotMatch(started.output(), /tmprl-a-revoked-key/);
    const missing = await devenv({ ...settings, TEMPORAL_API_KEY: '' }, 'list');
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /requires authentication \(Request unauthorized: invalid API key\): set TEMPORAL_API_KEY, or a client certificate/,
    );
  });
});
