/** The response_url responder on its own (src/api/slack/responder.ts), with a fetch of the test's own. */
import assert from 'node:assert/strict';
import { checkResponseUrl, createResponder, DEFAULT_RESPONSE_URL_ORIGINS, type ResponseUrl } from '../src/api/slack/responder';
import { createLogger } from '../src/logger';
import { md } from '../src/slack/blocks';
import { ephemeral, plain } from '../src/slack/replies';

interface Posted {
  url: string;
  init: RequestInit | undefined;
}

/** A fetch that records each call and answers with the next of `statuses` (then 200). */
function recordingFetch(statuses: (number | Error)[] = []): { fetch: typeof fetch; posted: Posted[] } {
  const posted: Posted[] = [];
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    posted.push({ url: String(input), init });
    const next = statuses.shift() ?? 200;
    if (next instanceof Error) throw next;
    return new Response('', { status: next });
  };
  return { fetch: fake as typeof fetch, posted };
}

const logger = createLogger('silent');
const reply = ephemeral(plain(md`dev1 stopped`));
const slackUrl = 'https://hooks.slack.com/commands/T0/1/abc';

function checked(raw: string): ResponseUrl {
  const result = checkResponseUrl(raw, DEFAULT_RESPONSE_URL_ORIGINS);
  assert.ok(result.ok, raw);
  return result.url;
}

describe('Slack response_url responder', function () {
  it("lets through only URLs on an allowed origin, with no credentials in them; Slack's own by default", function () {
    assert.equal(checkResponseUrl(slackUrl, DEFAULT_RESPONSE_URL_ORIGINS).ok, true);
    for (const bad of [
      'not a url',
      'http://hooks.slack.com/commands/x',
      'https://hooks.slack.com.evil.example/x',
      'https://user:pw@hooks.slack.com/x',
      'https://hooks.slack.com:8443/x',
    ]) {
      assert.equal(checkResponseUrl(bad, DEFAULT_RESPONSE_URL_ORIGINS).ok, false, bad);
    }
    assert.equal(
      createResponder({ logger, origins: ['http://127.0.0.1:9'] }).check('http://127.0.0.1:9/response/1', {
        user: 'U1',
        channel: undefined,
      }).ok,
      true,
    );
  });

  it('posts the reply as JSON, as a new message (replace_original false), with the fetch it is given', async function () {
    const { fetch, posted } = recordingFetch();
    await createResponder({ logger, fetch }).post(checked(slackUrl), reply);
    assert.equal(posted.length, 1);
    assert.equal(posted[0]!.url, slackUrl);
    assert.equal(posted[0]!.init?.method, 'POST');
    assert.deepEqual(JSON.parse(String(posted[0]!.init?.body)), { ...reply, replace_original: false });
  });

  it('retries a server error, a 429 or a network failure, up to three attempts', async function () {
    const { fetch, posted } = recordingFetch([503, new Error('ECONNRESET')]);
    await createResponder({ logger, fetch, retryDelayMs: 1 }).post(checked(slackUrl), reply);
    assert.equal(posted.length, 3, 'the third attempt succeeds');
    const giveUp = recordingFetch([500, 429, 500, 500]);
    await createResponder({ logger, fetch: giveUp.fetch, retryDelayMs: 1 }).post(checked(slackUrl), reply);
    assert.equal(giveUp.posted.length, 3, 'gives up after three, without throwing');
  });

  it('does not retry what cannot get better: an expired response_url (404)', async function () {
    const { fetch, posted } = recordingFetch([404]);
    await createResponder({ logger, fetch, retryDelayMs: 1 }).post(checked(slackUrl), reply);
    assert.equal(posted.length, 1);
  });

  it('later: posts the reply once the work is done', async function () {
    const { fetch, posted } = recordingFetch();
    let finish: (r: typeof reply) => void = () => undefined;
    createResponder({ logger, fetch }).later(checked(slackUrl), new Promise((resolve) => (finish = resolve)));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(posted.length, 0, 'nothing before the work is done');
    finish(reply);
    for (let i = 0; i < 10 && posted.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(posted.length, 1);
  });
});
