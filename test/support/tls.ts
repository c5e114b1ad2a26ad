/** A throwaway CA and a serving certificate for 127.0.0.1, made with openssl, for tests that need real TLS. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

export interface ServingCertificate {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: Buffer;
}

export function servingCertificate(commonName = 'devenv-webhook'): ServingCertificate {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-tls-'));
  const openssl = (args: string[]) =>
    execFileSync(process.env.OPENSSL_PATH ?? 'openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    `/CN=${commonName}-ca`,
    '-days',
    '2',
  ]);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${commonName}`]);
  writeFileSync(path.join(dir, 'tls.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl([
    'x509',
    '-req',
    '-in',
    'tls.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'tls.crt',
    '-extfile',
    'tls.ext',
    '-days',
    '2',
  ]);
  const caFile = path.join(dir, 'ca.crt');
  return { dir, caFile, certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key'), ca: readFileSync(caFile) };
}

/** POSTs JSON over HTTPS, trusting `ca`, as the apiserver calls a webhook; the raw answer. */
export function postJsonOverTls(url: string, body: string, ca: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** A test CA that issues server and client certificates, each a file pair in `dir`. */
export interface TestCa {
  dir: string;
  caFile: string;
  /** A server certificate for `names` (DNS names; IP addresses as `IP:1.2.3.4`). */
  server(name: string, names: string[]): { certFile: string; keyFile: string };
  /** A client certificate with common name `cn`, for mTLS. */
  client(cn: string): { certFile: string; keyFile: string };
}

export function testCa(commonName: string): TestCa {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-ca-'));
  const openssl = (args: string[]) =>
    execFileSync(process.env.OPENSSL_PATH ?? 'openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    `/CN=${commonName}`,
    '-days',
    '2',
  ]);
  const issue = (file: string, cn: string, extensions: string) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', `/CN=${cn}`]);
    writeFileSync(path.join(dir, `${file}.ext`), extensions);
    openssl([
      'x509',
      '-req',
      '-in',
      `${file}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${file}.crt`,
      '-extfile',
      `${file}.ext`,
      '-days',
      '2',
    ]);
    return { certFile: path.join(dir, `${file}.crt`), keyFile: path.join(dir, `${file}.key`) };
  };
  return {
    dir,
    caFile: path.join(dir, 'ca.crt'),
    server: (name, names) =>
      issue(
        `server-${name}`,
        names[0] ?? name,
        `subjectAltName=${names.map((n) => (n.startsWith('IP:') ? n : `DNS:${n}`)).join(',')}\nextendedKeyUsage=serverAuth\n`,
      ),
    client: (cn) => issue(`client-${cn}`, cn, 'extendedKeyUsage=clientAuth\n'),
  };
}

/** A client certificate for `commonName`, signed by the CA whose certificate and key are given. */
export function clientCertificate(commonName: string, ca: { caFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-tls-client-'));
  const openssl = (args: string[]) =>
    execFileSync(process.env.OPENSSL_PATH ?? 'openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', `/CN=${commonName}`]);
  writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl([
    'x509',
    '-req',
    '-in',
    'client.csr',
    '-CA',
    ca.caFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-CAserial',
    path.join(dir, 'ca.srl'),
    '-out',
    'client.crt',
    '-extfile',
    'client.ext',
    '-days',
    '2',
  ]);
  return { cert: readFileSync(path.join(dir, 'client.crt')), key: readFileSync(path.join(dir, 'client.key')) };
}

/** POSTs JSON over HTTPS as postJsonOverTls does, presenting a client certificate if one is given. */
export function postWithClientCertificate(
  url: string,
  body: string,
  ca: Buffer,
  client: { cert?: Buffer; key?: Buffer },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      url,
      { method: 'POST', ca, ...client, agent: false, headers: { 'content-type': 'application/json' } },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
