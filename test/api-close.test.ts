/**
 * The HTTP API's close (src/api/server.ts listenApi), over real HTTP into a koa app: what
 * src/main.ts awaits on SIGTERM before it lets go of Temporal. test/main.test.ts shows a
 * Slack command in flight answered by `npm start` itself; this shows the edges: idle
 * keep-alive connections do not hold it open, and a request that hangs is cut at the cap.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import { listenApi, type ListeningApi } from '../src/api/server';

describe('HTTP API close', function () {
  this.timeout(30_000);
  let answerAfterMs = 0;
  const router = new Router();
  router.get('/slow', async (ctx) => {
    await new Promise((resolve) => setTimeout(resolve, answerAfterMs));
    ctx.body = { ok: true };
  });
  const app = new Koa();
  app.use(router.routes());

  function get(api: ListeningApi, agent: http.Agent): Promise<{ status: number; connection?: string; body: string }> {
    return new Promise((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${api.port}/slow`, { agent }, (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, body }));
        })
        .on('error', reject);
    });
  }

  it('answers the request in flight (its connection then closed), closes idle keep-alive connections at once, and resolves when done', async function () {
    const api = await listenApi(app, { port: 0, host: '127.0.0.1', closeTimeoutMs: 10_000 });
    const agent = new http.Agent({ keepAlive: true });
    const idle = new http.Agent({ keepAlive: true });
    try {
      answerAfterMs = 0;
      assert.equal((await get(api, idle)).connection, 'keep-alive', 'an idle keep-alive connection stays open');
      assert.equal((await get(api, agent)).connection, 'keep-alive');
      answerAfterMs = 800;
      const inFlight = get(api, agent);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const began = Date.now();
      await api.close();
      const tookMs = Date.now() - began;
      assert.deepEqual(await inFlight, { status: 200, connection: 'close', body: '{"ok":true}' });
      assert.ok(tookMs >= 600, `close waited for the answer (${tookMs} ms)`);
      assert.ok(tookMs < 3_000, `closed after ${tookMs} ms, not when the idle connection timed out`);
      await assert.rejects(get(api, new http.Agent()), /ECONNREFUSED/, 'no new connections once closing');
    } finally {
      agent.destroy();
      idle.destroy();
    }
  });

  it('cuts a request still running at the cap', async function () {
    const api = await listenApi(app, { port: 0, host: '127.0.0.1', closeTimeoutMs: 500 });
    answerAfterMs = 20_000;
    const hung = get(api, new http.Agent()).catch((err: Error) => err);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const began = Date.now();
    await api.close();
    const tookMs = Date.now() - began;
    assert.ok(tookMs >= 400 && tookMs < 2_000, `closed after ${tookMs} ms, the cap being 500 ms`);
    assert.match(String(await hung), /socket hang up|ECONNRESET/);
  });
});
