/** Slack's request signature on its own (src/api/slack/verify.ts): no server, no Temporal. */
import assert from 'node:assert/strict';
import { MAX_CLOCK_SKEW_SECONDS, signatureProblem } from '../src/api/slack/verify';
import { slackSignature } from './support/slack';

describe('Slack signature verification', function () {
  const secret = 'test-signing-secret-0123456789';
  const body = 'user_id=U0ALICE0001&text=status+dev1';
  const nowMs = Date.UTC(2026, 0, 5, 12, 0, 0);
  const now = Math.floor(nowMs / 1000);
  const signed = (timestamp: number, text = body) => ({
    body: text,
    timestamp: String(timestamp),
    signature: slackSignature(secret, timestamp, text),
  });

  it('accepts a request signed with the secret, at the same time or within the window on either side', function () {
    for (const timestamp of [now, now - MAX_CLOCK_SKEW_SECONDS + 1, now + MAX_CLOCK_SKEW_SECONDS - 1]) {
      assert.equal(signatureProblem(secret, signed(timestamp), nowMs), undefined, `timestamp ${timestamp - now} s off`);
    }
  });

  it('refuses a body, secret or timestamp that does not match the signature', function () {
    assert.equal(signatureProblem(secret, { ...signed(now), body: `${body}&user_id=U0BOB00001` }, nowMs), 'signature mismatch');
    assert.equal(signatureProblem('another-secret', signed(now), nowMs), 'signature mismatch');
    assert.equal(signatureProblem(secret, { ...signed(now), timestamp: String(now - 1) }, nowMs), 'signature mismatch');
  });

  it('refuses a replay from outside the 5-minute window, in the past as in the future', function () {
    assert.equal(signatureProblem(secret, signed(now - MAX_CLOCK_SKEW_SECONDS - 1), nowMs), 'timestamp outside the 5-minute window');
    assert.equal(signatureProblem(secret, signed(now + MAX_CLOCK_SKEW_SECONDS + 1), nowMs), 'timestamp outside the 5-minute window');
  });

  it('refuses missing headers and a timestamp that is not a number of seconds', function () {
    assert.equal(signatureProblem(secret, { ...signed(now), signature: '' }, nowMs), 'missing signature headers');
    assert.equal(signatureProblem(secret, { ...signed(now), timestamp: '' }, nowMs), 'missing signature headers');
    for (const timestamp of ['1e9', '-1', `${now}.5`, '1'.repeat(13)]) {
      assert.equal(signatureProblem(secret, { ...signed(now), timestamp }, nowMs), 'malformed timestamp', timestamp);
    }
  });
});
