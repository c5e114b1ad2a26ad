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

function openssl(args: string[], cwd: string): void {
  execFileSync(process.env.OPENSSL_PATH ?? 'openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA certificate and key in `dir` (ca.crt, ca.key). */
function makeCa(dir: string, commonName: string): void {
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', `/CN=${commonName}`, '-days', '2'],
    dir,
  );
}

/** `<file>.crt` and `<file>.key` in `dir` for `commonName`, with `extensions`, signed by the CA given. */
function issue(dir: string, ca: { certFile: string; keyFile: string }, file: string, commonName: string, extensions: string) {
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', `/CN=${commonName}`], dir);
  writeFileSync(path.join(dir, `${file}.ext`), extensions);
  const serial = ['-CAcreateserial', '-CAserial', path.join(dir, 'ca.srl')];
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${file}.csr`,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      ...serial,
      '-out',
      `${file}.crt`,
      '-extfile',
      `${file}.ext`,
      '-days',
      '2',
    ],
    dir,
  );
  return { certFile: path.join(dir, `${file}.crt`), keyFile: path.join(dir, `${file}.key`) };
}

const subjectAltNames = (names: string[]) => `subjectAltName=${names.map((n) => (n.startsWith('IP:') ? n : `DNS:${n}`)).join(',')}`;

export function servingCertificate(commonName = 'devenv-webhook'): ServingCertificate {
  const ca = testCa(`${commonName}-ca`);
  const served = issue(ca.dir, ca, 'tls', commonName, `${subjectAltNames(['IP:127.0.0.1', 'localhost'])}\nextendedKeyUsage=serverAuth\n`);
  return { dir: ca.dir, caFile: ca.caFile, ...served, ca: readFileSync(ca.caFile) };
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

export function testCa(commonName: string): TestCa & { certFile: string; keyFile: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-ca-'));
  makeCa(dir, commonName);
  const ca = { certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') };
  return {
    dir,
    caFile: ca.certFile,
    ...ca,
    server: (name, names) => issue(dir, ca, `server-${name}`, names[0] ?? name, `${subjectAltNames(names)}\nextendedKeyUsage=serverAuth\n`),
    client: (cn) => issue(dir, ca, `client-${cn}`, cn, 'extendedKeyUsage=clientAuth\n'),
  };
}

/** A client certificate for `commonName`, signed by the CA whose certificate and key are given. */
export function clientCertificate(commonName: string, ca: { caFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-tls-client-'));
  const client = issue(dir, { certFile: ca.caFile, keyFile: ca.keyFile }, 'client', commonName, 'extendedKeyUsage=clientAuth\n');
  return { cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) };
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
