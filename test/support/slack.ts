/**
 * Slack's side of the conversation, for tests: a local HTTP server that speaks the Web API's
 * JSON (`{ ok: true, ... }`) at `/api/<method>` and records every `response_url` post, and a
 * client that signs requests the way Slack does (v0 HMAC-SHA256 over `v0:timestamp:body`).
 * The same server is Slack's end of Socket Mode: `apps.connections.open`, called with the
 * app-level token, hands out a one-time WebSocket URL on it, where Slack's protocol is
 * spoken: hello, envelopes, acknowledgements (with their payloads) and disconnect.
 */
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

export interface RecordedPost {
  /** `chat.postMessage`, or `response` for a response_url. */
  method: string;
  /** For response_url posts: which one (the path after /response/). */
  id?: string;
  body: Record<string, unknown>;
  authorization?: string;
  status: number;
  at: number;
}

export class SlackRecorder {
  readonly posts: RecordedPost[] = [];
  /** Web API answers to hand out before the normal `{ ok: true }`, e.g. a 429. */
  readonly scripted: { status: number; headers?: Record<string, string>; body: unknown }[] = [];
  /** Answers a Web API method gives instead of `{ ok: true }` while set, however often it is called (Slack down, rate-limited). */
  readonly failing = new Map<string, { status: number; headers?: Record<string, string>; body: unknown }>();
  /** Channels that answer `channel_not_found`. */
  readonly missingChannels = new Set<string>();
  /** Channels that answer `internal_error` (Slack failing for them) while set. */
  readonly failingChannels = new Set<string>();
  /** User groups and their members, for `usergroups.users.list`; any other group is `no_such_subteam`, as Slack answers. */
  readonly userGroups = new Map<string, string[]>();
  /** The app-level token `apps.connections.open` accepts; any other is `invalid_auth`, as Slack answers. */
  appToken = 'xapp-1-A0TEST0001-1-test-app-token';
  /** Every Socket Mode connection made, the closed ones too, in order. */
  readonly sockets: WebSocket[] = [];
  private readonly tickets = new Set<string>();
  private readonly acks = new Map<string, (payload: Record<string, unknown> | undefined) => void>();
  private readonly link = new WebSocketServer({ noServer: true });
  private server: Server | undefined;
  private responseCounter = 0;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void readBody(req).then((raw) => {
        const path = req.url ?? '';
        const body = parseBody(raw, req.headers['content-type'] ?? '');
        const reply = (status: number, json: unknown, headers: Record<string, string> = {}) => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(json));
        };
        if (path.startsWith('/response/')) {
          this.posts.push({ method: 'response', id: path.slice('/response/'.length), body, status: 200, at: Date.now() });
          reply(200, { ok: true });
          return;
        }
        const method = path.replace(/^\/api\//, '');
        if (method === 'apps.connections.open') {
          const ok = req.headers.authorization === `Bearer ${this.appToken}`;
          const ticket = randomUUID();
          if (ok) this.tickets.add(ticket);
          const json = ok
            ? { ok: true, url: `${this.url.replace(/^http/, 'ws')}/link/?ticket=${ticket}` }
            : { ok: false, error: 'invalid_auth' };
          this.posts.push({ method, body, authorization: req.headers.authorization, status: 200, at: Date.now() });
          reply(200, json);
          return;
        }
        if (method === 'usergroups.users.list') {
          const members = this.userGroups.get(String(body.usergroup));
          this.posts.push({ method, body, authorization: req.headers.authorization, status: 200, at: Date.now() });
          reply(200, members ? { ok: true, users: members } : { ok: false, error: 'no_such_subteam' });
          return;
        }
        const failing = this.failing.get(method);
        if (failing) {
          this.posts.push({ method, body, authorization: req.headers.authorization, status: failing.status, at: Date.now() });
          reply(failing.status, failing.body, failing.headers);
          return;
        }
        const scripted = this.scripted.shift();
        const channel = String(body.channel);
        const [status, json, headers] = scripted
          ? [scripted.status, scripted.body, scripted.headers]
          : this.missingChannels.has(channel)
            ? [200, { ok: false, error: 'channel_not_found' }]
            : this.failingChannels.has(channel)
              ? [200, { ok: false, error: 'internal_error' }]
              : [200, { ok: true, channel, ts: `${Date.now() / 1000}`, message: { text: body.text } }];
        this.posts.push({ method, body, authorization: req.headers.authorization, status, at: Date.now() });
        reply(status, json, headers);
      });
    });
    // A URL is good for one connection, like Slack's.
    this.server.on('upgrade', (req, socket, head) => {
      const ticket = new URL(req.url ?? '/', this.url).searchParams.get('ticket') ?? '';
      if (!req.url?.startsWith('/link/') || !this.tickets.delete(ticket)) {
        socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
        return;
      }
      this.link.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.link.close();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private accept(ws: WebSocket): void {
    this.sockets.push(ws);
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString('utf8')) as { envelope_id?: string; payload?: Record<string, unknown> };
      if (message.envelope_id) this.acks.get(message.envelope_id)?.(message.payload);
    });
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: 1,
        debug_info: { host: 'applink-test', approximate_connection_time: 18060 },
        connection_info: { app_id: 'A0TEST0001' },
      }),
    );
  }

  /** The open Socket Mode connection, once there are `count` connections in all (a reconnect makes the next one). */
  async openSocket(count = 1): Promise<WebSocket> {
    return eventually(`Socket Mode connection #${count}`, () => {
      const ws = this.sockets[count - 1];
      return ws?.readyState === WebSocket.OPEN ? ws : undefined;
    });
  }

  /**
   * Sends one envelope on the newest open connection, as Slack does, and resolves with the
   * client's acknowledgement: its payload (what Slack would show for a slash command) and
   * how long it took. Fails if none comes within Slack's 3 seconds and some to spare.
   */
  async envelope(
    type: 'slash_commands' | 'interactive' | 'events_api',
    payload: Record<string, unknown>,
  ): Promise<{ payload: Record<string, unknown> | undefined; ms: number }> {
    const ws = [...this.sockets].reverse().find((s) => s.readyState === WebSocket.OPEN);
    assert.ok(ws, 'no open Socket Mode connection');
    const envelopeId = randomUUID();
    const began = performance.now();
    const acked = new Promise<Record<string, unknown> | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no acknowledgement of the ${type} envelope within 10 s`)), 10_000);
      this.acks.set(envelopeId, (ackPayload) => {
        clearTimeout(timer);
        resolve(ackPayload);
      });
    });
    ws.send(
      JSON.stringify({
        envelope_id: envelopeId,
        type,
        payload,
        accepts_response_payload: type === 'slash_commands',
        retry_attempt: 0,
        retry_reason: '',
      }),
    );
    try {
      return { payload: await acked, ms: performance.now() - began };
    } finally {
      this.acks.delete(envelopeId);
    }
  }

  /** Slack's request that the client go away and come back on a new connection. */
  disconnect(reason: 'refresh_requested' | 'warning' | 'link_disabled' = 'refresh_requested'): void {
    const ws = [...this.sockets].reverse().find((s) => s.readyState === WebSocket.OPEN);
    ws?.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-test' } }));
  }

  /** A fresh response_url; its posts are `responses(id)`. */
  responseUrl(): { id: string; url: string } {
    const id = String(++this.responseCounter);
    return { id, url: `${this.url}/response/${id}` };
  }

  responses(id: string): Record<string, unknown>[] {
    return this.posts.filter((p) => p.method === 'response' && p.id === id).map((p) => p.body);
  }

  /** The views Slack accepted with views.publish for `user`, oldest first. */
  homes(user: string): Record<string, unknown>[] {
    return this.posts
      .filter((p) => p.method === 'views.publish' && p.status === 200 && p.body.user_id === user)
      .map((p) => p.body.view as Record<string, unknown>);
  }

  /** Messages Slack accepted (status 200, ok) with chat.postMessage. */
  messages(): Record<string, unknown>[] {
    return this.posts.filter((p) => p.method === 'chat.postMessage' && p.status === 200).map((p) => p.body);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The Web API client posts forms whose `blocks` field is JSON; response_url posts are JSON. */
function parseBody(raw: string, contentType: string): Record<string, unknown> {
  if (contentType.includes('application/json')) return JSON.parse(raw) as Record<string, unknown>;
  const form = Object.fromEntries(new URLSearchParams(raw));
  const parsed: Record<string, unknown> = { ...form };
  if (form.blocks) parsed.blocks = JSON.parse(form.blocks);
  if (form.view) parsed.view = JSON.parse(form.view);
  return parsed;
}

export interface SignedResponse {
  status: number;
  body: Record<string, unknown>;
  ms: number;
}

export function slackSignature(secret: string, timestamp: number | string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

type SigningOptions = { timestamp?: number; headers?: Record<string, string | undefined> };

/** POSTs a form the way Slack does; `headers` overrides (or, set to undefined, removes) the signing headers. */
export async function postSigned(
  url: string,
  secret: string,
  form: Record<string, string>,
  options: SigningOptions = {},
): Promise<SignedResponse> {
  return postSignedBody(url, secret, new URLSearchParams(form).toString(), 'application/x-www-form-urlencoded', options);
}

/** POSTs JSON the way the Events API does (`event_callback`, `url_verification`), signed like a form. */
export async function postSignedJson(url: string, secret: string, json: unknown, options: SigningOptions = {}): Promise<SignedResponse> {
  return postSignedBody(url, secret, JSON.stringify(json), 'application/json', options);
}

async function postSignedBody(
  url: string,
  secret: string,
  body: string,
  contentType: string,
  { timestamp = Math.floor(Date.now() / 1000), headers = {} }: SigningOptions,
): Promise<SignedResponse> {
  const all: Record<string, string | undefined> = {
    'content-type': contentType,
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': slackSignature(secret, timestamp, body),
    ...headers,
  };
  const began = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined)),
    body,
  });
  const text = await response.text();
  const ms = performance.now() - began;
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, ms };
}

/** Every `text` string inside a message's blocks, in order. */
function blockTexts(message: Record<string, unknown>): string[] {
  const texts: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'text' && typeof value === 'string') texts.push(value);
        else walk(value);
      }
    }
  };
  walk(message.blocks);
  return texts;
}

/** Everything a user reads in a message: every text inside its blocks. */
export function visibleText(message: Record<string, unknown>): string {
  // Slack shows entities as the characters they stand for.
  return blockTexts(message).join('\n').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/**
 * Every string Slack reads as mrkdwn, raw, as it was sent: the fallback `text` and every
 * `text` inside the blocks. Where `visibleText` shows what a person reads, this shows what
 * Slack parses: a `<!channel>` here pings the channel.
 */
export function slackFields(message: Record<string, unknown>): string[] {
  return [...(typeof message.text === 'string' ? [message.text] : []), ...blockTexts(message)];
}

/** Slack markup in a field: a special mention (`<!channel>`, `<!here>`, `<!subteam^…>`), a user or channel mention, or a link. Dates (`<!date^…>`) are ours. */
export function markupIn(field: string): string[] {
  return [...field.matchAll(/<(?!!date\^)[^>]*>/g)].map((m) => m[0]);
}

/** Polls until `check` returns a value, or fails naming what it waited for. */
export async function eventually<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
