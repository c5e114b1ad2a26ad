/**
 * A TLS-terminating gRPC proxy in front of a plaintext Temporal dev server, as a secured
 * cluster (or Temporal Cloud) looks to a client: node:http2 over TLS, each call passed on
 * to the dev server with its headers, messages and trailers. With `clientCa` it requires a
 * client certificate issued by that CA (mTLS); with `apiKey` it refuses, as Temporal Cloud
 * does, every call whose `authorization` metadata is not `Bearer <key>`.
 */
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';

export interface TlsProxySettings {
  /** host:port of the plaintext server. */
  upstream: string;
  certFile: string;
  keyFile: string;
  /** Require a client certificate issued by this CA. */
  clientCaFile?: string;
  apiKey?: string;
}

export interface TlsProxy {
  port: number;
  /** Each call passed on: the client certificate's CN (or `-`) and the gRPC method, e.g. `PollWorkflowTaskQueue`. */
  calls: { cn: string; method: string }[];
  /** Calls refused for their API key. */
  refused: number;
  close(): Promise<void>;
}

export async function startTlsProxy(settings: TlsProxySettings): Promise<TlsProxy> {
  const upstream = http2.connect(`http://${settings.upstream}`);
  upstream.on('error', () => undefined);
  const calls: TlsProxy['calls'] = [];
  const proxy: TlsProxy = { port: 0, calls, refused: 0, close: async () => undefined };
  const server = http2.createSecureServer({
    cert: readFileSync(settings.certFile),
    key: readFileSync(settings.keyFile),
    ...(settings.clientCaFile ? { ca: readFileSync(settings.clientCaFile), requestCert: true, rejectUnauthorized: true } : {}),
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const method =
      String(headers[':path'] ?? '')
        .split('/')
        .pop() ?? '';
    if (settings.apiKey !== undefined && headers.authorization !== `Bearer ${settings.apiKey}`) {
      proxy.refused++;
      // A trailers-only gRPC answer, as Temporal Cloud gives a bad key.
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '16',
          'grpc-message': 'Request unauthorized: invalid API key',
        },
        { endStream: true },
      );
      stream.resume();
      return;
    }
    const peer = (stream.session?.socket as TLSSocket | undefined)?.getPeerCertificate?.();
    calls.push({ cn: peer && 'subject' in peer && peer.subject ? String(peer.subject.CN) : '-', method });
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers))
      if (name !== ':scheme' && name !== ':authority' && value !== undefined) forwarded[name] = value;
    const call = upstream.request(forwarded);
    call.on('response', (answer) => {
      const out: http2.OutgoingHttpHeaders = { ...answer };
      const trailersOnly = 'grpc-status' in answer;
      if (stream.destroyed) return;
      stream.respond(out, trailersOnly ? { endStream: true } : { waitForTrailers: true });
      if (!trailersOnly) call.pipe(stream);
    });
    let trailers: http2.OutgoingHttpHeaders = {};
    call.on('trailers', (received) => (trailers = { ...received }));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    call.on('error', () => stream.destroy());
    stream.on('close', () => call.destroy());
    stream.pipe(call);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as { port: number }).port;
  proxy.close = async () => {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => server.close(resolve));
    upstream.destroy();
  };
  return proxy;
}
