/**
 * The webhook's own HTTPS server, as the apiserver uses it: keep-alive connections that
 * must not hold a stopping API open, and a certificate rotated on disk (cert-manager
 * renewing the Secret) that is served without a restart.
 */
import assert from 'node:assert/strict';
import { copyFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import Router from '@koa/router';
import { startWebhookServer, type WebhookServer } from '../src/api/webhook';
import { createLogger } from '../src/logger';
import { eventually } from './support/slack';
import { servingCertificate } from './support/tls';

describe('webhook HTTPS server', function () {
  this.timeout(30_000);
  const logger = createLogger('silent');
  const tls = servingCertificate();
  let answerAfterMs = 0;
  const router = new Router();
  router.post('/review', async (ctx) => {
    await new Promise((resolve) => setTimeout(resolve, answerAfterMs));
    ctx.body = { ok: true };
  });

  after(() => rmSync(tls.dir, { recursive: true, force: true }));

  /** One POST on `agent`: status, the Connection header it was answered with, and the certificate's subject. */
  function post(server: WebhookServer, agent: https.Agent): Promise<{ status: number; connection?: string; subject: string }> {
    return new Promise((resolve, reject) => {
      const request = https.request(`${server.url}/review`, { method: 'POST', agent }, (response) => {
        response.resume();
        const subject = String((response.socket as TLSSocket).getPeerCertificate().subject?.CN);
        response.on('end', () => resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, subject }));
      });
      request.on('error', reject);
      request.end('{}');
    });
  }

  it("stops at once when the apiserver's keep-alive connections are idle or mid-request: the request in flight is answered, its connection closed", async function () {
    const server = await startWebhookServer({ certFile: tls.certFile, keyFile: tls.keyFile, port: 0, host: '127.0.0.1', router, logger });
    const agent = new https.Agent({ keepAlive: true, ca: tls.ca });
    try {
      answerAfterMs = 0;
      assert.equal((await post(server, agent)).connection, 'keep-alive', 'an idle keep-alive connection to begin with');
      answerAfterMs = 300;
      const inFlight = post(server, agent);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const began = Date.now();
      await server.close();
      const tookMs = Date.now() - began;
      assert.deepEqual(await inFlight, { status: 200, connection: 'close', subject: 'devenv-webhook' });
      assert.ok(tookMs < 2_000, `closed after ${tookMs} ms, not when the apiserver drops its connections`);
    } finally {
      agent.destroy();
    }
  });

  it('cuts a request that does not finish within its close timeout', async function () {
    const server = await startWebhookServer({
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: '127.0.0.1',
      router,
      logger,
      closeTimeoutMs: 200,
    });
    const agent = new https.Agent({ keepAlive: true, ca: tls.ca });
    try {
      answerAfterMs = 10_000;
      const stuck = post(server, agent).catch((err: unknown) => err);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const began = Date.now();
      await server.close();
      assert.ok(Date.now() - began < 2_000);
      assert.match(String(await stuck), /socket hang up|ECONNRESET/);
    } finally {
      agent.destroy();
    }
  });

  it('serves a rotated certificate without a restart', async function () {
    const served = servingCertificate();
    const rotated = servingCertificate('devenv-webhook-renewed');
    const server = await startWebhookServer({
      certFile: served.certFile,
      keyFile: served.keyFile,
      port: 0,
      host: '127.0.0.1',
      router,
      logger,
      reloadIntervalMs: 50,
    });
    try {
      answerAfterMs = 0;
      assert.equal((await post(server, new https.Agent({ ca: served.ca }))).subject, 'devenv-webhook');
      copyFileSync(rotated.keyFile, served.keyFile);
      copyFileSync(rotated.certFile, served.certFile);
      // New connections get the new certificate, verified against its new CA.
      const after = await eventually(
        'the new certificate to be served',
        () => post(server, new https.Agent({ ca: rotated.ca })).catch(() => undefined),
        5_000,
      );
      assert.equal(after.subject, 'devenv-webhook-renewed');
    } finally {
      await server.close();
      for (const dir of [served.dir, rotated.dir]) rmSync(dir, { recursive: true, force: true });
    }
  });
});
