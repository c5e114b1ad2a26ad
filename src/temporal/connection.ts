/**
 * How the service, its worker and the `devenv` CLI reach a Temporal cluster: the same
 * `TEMPORAL_*` variables and `temporal.toml` profiles as Temporal's own CLI and SDKs, read
 * by the SDK's @temporalio/envconfig (address, namespace, mTLS client certificate and key,
 * server CA and server name, API key, gRPC headers). Everything is read and checked once
 * at start-up; a connection that the server or this client refuses fails with one line
 * that says why, before anything else starts.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';

/** Secrets inside (the API key, the client key): never log it; `security` says what is in use. */
export interface TemporalConnectionOptions {
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** gRPC headers sent with every call (TEMPORAL_GRPC_META_*, a profile's grpc_meta). */
  metadata?: Record<string, string>;
}

export interface TemporalProfile {
  /** Unset: no cluster named, so `npm start` runs the local dev server. */
  address?: string;
  namespace?: string;
  connection: TemporalConnectionOptions;
  /** Where the settings came from, e.g. `profile "prod" of /etc/temporal/temporal.toml`; undefined: variables only. */
  source?: string;
  /** What protects the connection, with no secret in it: `plaintext`, `TLS, server CA from ...`, `mTLS (client certificate CN=...)`, `API key`. */
  security: string;
}

/** What the env names for each TLS file, for messages: variable and profile key. */
const TLS_SETTINGS = {
  clientCert: 'TEMPORAL_TLS_CLIENT_CERT_PATH or _DATA (client_cert_path in a profile)',
  clientKey: 'TEMPORAL_TLS_CLIENT_KEY_PATH or _DATA (client_key_path in a profile)',
  serverCACert: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH or _DATA (server_ca_cert_path in a profile)',
} as const;

/**
 * Reads the connection settings from `env` (already stripped of empty values) and the
 * profile it selects, and checks each file and value. Returns the settings, or one
 * problem per bad setting, each naming it.
 */
export function loadTemporalProfile(env: Record<string, string>): { profile?: TemporalProfile; problems: string[] } {
  const problems: string[] = [];
  const file = env.TEMPORAL_CONFIG_FILE;
  if (file !== undefined && !existsSync(file)) return { problems: [`TEMPORAL_CONFIG_FILE=${JSON.stringify(file)}: no such file`] };
  if (env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION !== undefined) {
    problems.push(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: not supported (the TypeScript SDK always verifies the server); set TEMPORAL_TLS_SERVER_NAME to the name in the server certificate instead',
    );
  }
  if (env.TEMPORAL_TLS !== undefined && !['true', 'false', '1', '0'].includes(env.TEMPORAL_TLS)) {
    problems.push(`TEMPORAL_TLS=${JSON.stringify(env.TEMPORAL_TLS)}: must be true or false`);
  }
  let loaded: ClientConfigProfile;
  try {
    // Strict: a misspelt key in temporal.toml is an error, not a setting silently ignored.
    loaded = loadClientConfigProfile({ overrideEnvVars: env, configFileStrict: true });
  } catch (err) {
    const where = env.TEMPORAL_PROFILE
      ? `TEMPORAL_PROFILE=${JSON.stringify(env.TEMPORAL_PROFILE)}`
      : `Temporal config file ${file ?? 'temporal.toml'}`;
    return { problems: [...problems, `${where}: ${(err as Error).message}`] };
  }
  if (problems.length > 0) return { problems };

  const tls = loaded.tls;
  const enabled = tls !== undefined && tls.disabled !== true;
  if (tls?.disabled === true && loaded.apiKey !== undefined) {
    problems.push(
      'TEMPORAL_API_KEY: would be sent in clear with TLS disabled (TEMPORAL_TLS=false or tls.disabled in the profile); an API key needs TLS',
    );
  }
  const pems: Partial<Record<keyof typeof TLS_SETTINGS, string>> = {};
  if (enabled) {
    for (const key of Object.keys(TLS_SETTINGS) as (keyof typeof TLS_SETTINGS)[]) {
      const source = tls[key];
      if (!source) continue;
      try {
        pems[key] = readSource(source);
      } catch (err) {
        problems.push(`${TLS_SETTINGS[key]}: cannot read ${'path' in source ? source.path : 'the data'}: ${(err as Error).message}`);
      }
    }
    if (Boolean(tls.clientCert) !== Boolean(tls.clientKey)) {
      problems.push(
        `${tls.clientCert ? TLS_SETTINGS.clientKey : TLS_SETTINGS.clientCert}: a client certificate and its key go together; set both or neither`,
      );
    }
  }
  let certificate: X509Certificate | undefined;
  try {
    if (pems.clientCert) certificate = new X509Certificate(pems.clientCert);
  } catch {
    problems.push(`${TLS_SETTINGS.clientCert}: not a PEM certificate`);
  }
  try {
    if (pems.serverCACert) new X509Certificate(pems.serverCACert);
  } catch {
    problems.push(`${TLS_SETTINGS.serverCACert}: not a PEM certificate`);
  }
  if (pems.clientKey) {
    try {
      const key = createPrivateKey(pems.clientKey);
      if (certificate && !certificate.checkPrivateKey(key))
        problems.push(`${TLS_SETTINGS.clientKey}: is not the key of the client certificate (${certificate.subject.replace(/\n/g, ', ')})`);
    } catch {
      problems.push(`${TLS_SETTINGS.clientKey}: not a PEM private key`);
    }
  }
  if (!loaded.address && (enabled || loaded.apiKey !== undefined)) {
    problems.push(
      'TEMPORAL_ADDRESS (unset): TLS and API key settings are for a Temporal cluster; give its address (the local dev server takes neither)',
    );
  }
  if (problems.length > 0) return { problems };

  const options = toClientOptions(loaded).connectionOptions;
  const profileName = env.TEMPORAL_PROFILE ?? 'default';
  const usedFile = file ?? defaultConfigFile(env);
  const security = [
    !options.tls ? 'plaintext' : certificate ? `mTLS (client certificate ${certificate.subject.replace(/\n/g, ', ')})` : 'TLS',
    ...(options.apiKey !== undefined ? ['API key'] : []),
    ...(enabled && tls.serverCACert
      ? [`server CA from ${'path' in tls.serverCACert ? tls.serverCACert.path : 'TEMPORAL_TLS_SERVER_CA_CERT_DATA'}`]
      : []),
    ...(enabled && tls.serverName ? [`server name ${tls.serverName}`] : []),
    ...(options.metadata && Object.keys(options.metadata).length ? [`gRPC headers ${Object.keys(options.metadata).join(', ')}`] : []),
  ].join(', ');
  return {
    problems: [],
    profile: {
      address: loaded.address,
      namespace: loaded.namespace,
      connection: { tls: options.tls ?? undefined, apiKey: options.apiKey, metadata: loaded.grpcMeta },
      source: usedFile && existsSync(usedFile) ? `profile "${profileName}" of ${usedFile}` : undefined,
      security,
    },
  };
}

function readSource(source: ConfigDataSource): string {
  // envconfig reads a file again for the connection; read here first for a message naming the setting.
  if ('path' in source) return readFileSync(source.path, 'utf8');
  return typeof source.data === 'string' ? source.data : Buffer.from(source.data).toString('utf8');
}

/** Where envconfig looks when TEMPORAL_CONFIG_FILE is unset (Linux and macOS). */
function defaultConfigFile(env: Record<string, string>): string | undefined {
  const base =
    process.platform === 'darwin'
      ? env.HOME
        ? `${env.HOME}/Library/Application Support`
        : undefined
      : (env.XDG_CONFIG_HOME ?? (env.HOME ? `${env.HOME}/.config` : undefined));
  return base ? `${base}/temporalio/temporal.toml` : undefined;
}

/** A connection refused or impossible: the one line to print, no stack. */
export class TemporalConnectError extends Error {
  override name = 'TemporalConnectError';
}

/** The client connection (API, CLI, Schedules). */
export async function connectClient(address: string, options: TemporalConnectionOptions, connectTimeoutMs = 10_000): Promise<Connection> {
  await checkTls(address, options, connectTimeoutMs);
  try {
    return await Connection.connect({ address, ...options, connectTimeout: connectTimeoutMs });
  } catch (err) {
    throw explain(address, options, err);
  }
}

/** The worker's connection (the SDK's Rust core). */
export async function connectNative(address: string, options: TemporalConnectionOptions): Promise<NativeConnection> {
  await checkTls(address, options, 10_000);
  try {
    return await NativeConnection.connect({ address, ...options });
  } catch (err) {
    throw explain(address, options, err);
  }
}

/**
 * With TLS, one handshake of our own first: the SDKs retry a refused handshake until
 * their deadline and then report only that they could not connect; node:tls says why
 * (an untrusted server, a name that does not match, a client certificate refused).
 * Accepted once the server sends its first bytes (its HTTP/2 settings), which with
 * TLS 1.3 it does only after it has accepted the client's certificate.
 */
async function checkTls(address: string, options: TemporalConnectionOptions, timeoutMs: number): Promise<void> {
  if (!options.tls) return;
  const settings: TLSConfig = options.tls === true ? {} : options.tls;
  const [host, port] = splitAddress(address);
  await new Promise<void>((resolve, reject) => {
    const socket = tls.connect({
      host,
      port: Number(port),
      ALPNProtocols: ['h2'],
      ...(settings.serverRootCACertificate ? { ca: Buffer.from(settings.serverRootCACertificate) } : {}),
      ...(settings.clientCertPair ? { cert: Buffer.from(settings.clientCertPair.crt), key: Buffer.from(settings.clientCertPair.key) } : {}),
      // The name the certificate is checked against: TEMPORAL_TLS_SERVER_NAME, else the address's host (an IP address is checked as such).
      ...(settings.serverNameOverride ? { servername: settings.serverNameOverride } : isIP(host) ? {} : { servername: host }),
    });
    const timer = setTimeout(
      () => finish(new TemporalConnectError(`cannot reach Temporal at ${address} over TLS: no answer within ${timeoutMs / 1000}s`)),
      timeoutMs,
    );
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.once('data', () => finish());
    socket.once('error', (err: NodeJS.ErrnoException) => finish(new TemporalConnectError(tlsReason(address, settings, err))));
    socket.once('close', () =>
      finish(
        new TemporalConnectError(
          settings.clientCertPair
            ? `Temporal at ${address} closed the TLS connection: it refused this client's certificate, or is not a Temporal endpoint`
            : `Temporal at ${address} closed the TLS connection: it may require a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)`,
        ),
      ),
    );
  });
}

function tlsReason(address: string, tls: TLSConfig, error: NodeJS.ErrnoException): string {
  // OpenSSL's own message spans lines and names its source files; its reason is the part a person needs.
  const err = { code: error.code, message: (error as { reason?: string }).reason ?? error.message.split('\n')[0]! };
  const text = `${err.code ?? ''} ${err.message}`;
  if (
    /CERT_|certificate/i.test(text) &&
    /verify|self.signed|UNABLE_TO|SELF_SIGNED|issuer|not trusted|unknown ca/i.test(text) &&
    !/alert/i.test(text)
  ) {
    return `Temporal at ${address}: its server certificate is not trusted (${err.message}); give the CA that issued it in TEMPORAL_TLS_SERVER_CA_CERT_PATH`;
  }
  if (/ERR_TLS_CERT_ALTNAME_INVALID|altnames|does not match/i.test(text)) {
    return `Temporal at ${address}: its server certificate is not for this name (${err.message}); set TEMPORAL_TLS_SERVER_NAME to the name it carries`;
  }
  if (
    /alert certificate required|alert handshake failure|alert bad certificate|alert unknown ca|alert certificate unknown|alert decrypt|alert access denied/i.test(
      text,
    )
  ) {
    return tls.clientCertPair
      ? `Temporal at ${address} refused this client's certificate (${err.message}): it is not issued by a CA the server trusts, or has expired`
      : `Temporal at ${address} requires a client certificate (${err.message}): set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH`;
  }
  if (/wrong version number|packet length too long|EPROTO/i.test(text)) {
    return `Temporal at ${address} does not speak TLS (${err.message}): unset TEMPORAL_TLS and the TLS settings, or check the address`;
  }
  return `cannot reach Temporal at ${address} over TLS: ${err.message}`;
}

/** The SDK's own failure, as one line: an API key refused, or the server unreachable. */
function explain(address: string, options: TemporalConnectionOptions, err: unknown): TemporalConnectError {
  const cause = (err as { cause?: { code?: number; details?: string } }).cause ?? (err as { code?: number; details?: string });
  const message = err instanceof Error ? err.message : String(err);
  // The client's gRPC status, or the worker's (the Rust core names it in words).
  const native =
    /code: '(?:The request does not have valid authentication credentials|The caller does not have permission[^']*)', message: "([^"]*)"/.exec(
      message,
    );
  const detail = cause.details ?? native?.[1] ?? message;
  if (cause.code === 16 || cause.code === 7 || native) {
    return new TemporalConnectError(
      options.apiKey !== undefined
        ? `Temporal at ${address} refused the API key (TEMPORAL_API_KEY): ${detail}`
        : `Temporal at ${address} requires authentication (${detail}): set TEMPORAL_API_KEY, or a client certificate`,
    );
  }
  const hint = options.tls ? '' : ' (if it takes TLS: TEMPORAL_TLS=true, or the TEMPORAL_TLS_* settings)';
  return new TemporalConnectError(`cannot reach Temporal at ${address} (set TEMPORAL_ADDRESS): ${message}${hint}`);
}

function splitAddress(address: string): [string, string] {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  return match ? [match[1]!, match[2]!] : [address, '7233'];
}
