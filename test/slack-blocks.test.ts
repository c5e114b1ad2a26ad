/** The escaping seam of src/slack/blocks.ts on its own: text from outside cannot leave a code span. */
import assert from 'node:assert/strict';
import { eventMessage } from '../src/activities/slack';
import { code, codeBlock, section } from '../src/slack/blocks';

describe('Slack blocks: code spans', function () {
  const hostile = 'x`\n*:rotating_light: Re-auth:* https://evil.example/sso `';

  it('a backtick or a newline in outside text does not end an inline code span', function () {
    const text = code(hostile).source;
    assert.equal(text.split('`').length - 1, 2, `only the span's own two backticks: ${text}`);
    assert.doesNotMatch(text, /\n/);
    assert.ok(text.startsWith('`') && text.endsWith('`'));
  });

  it('a code block holds its text whatever it contains', function () {
    const text = (section(codeBlock(`row 1\n${hostile}\n\`\`\`\n<!channel>`)).text as { text: string }).text;
    assert.ok(text.startsWith('```') && text.endsWith('```'));
    assert.equal(text.slice(3, -3).includes('`'), false, `no backtick inside: ${text}`);
    assert.match(text, /&lt;!channel&gt;/);
  });
});

describe('Slack announcement of an AWS follow-up', function () {
  it('says what the follow-up did and, as warnings in the text too, what it gave up on', function () {
    const given = eventMessage({
      kind: 'aws-followed',
      namespace: 'dev1',
      action: 'start',
      detail: 'AWS: nothing left to start at 2026-12-02 09:05 CET',
      problems: ['AWS: rds-instance orders-db still stopping after 1h: not started; start the environment again'],
    });
    assert.equal(
      given.text,
      'dev1: AWS: nothing left to start at 2026-12-02 09:05 CET. AWS: rds-instance orders-db still stopping after 1h: not started; start the environment again',
    );
    const shown = JSON.stringify(given.blocks);
    assert.match(shown, /:cloud: \*dev1\*: AWS: nothing left to start/);
    assert.match(shown, /:warning: AWS: rds-instance orders-db still stopping after 1h/);
    const done = eventMessage({
      kind: 'aws-followed',
      namespace: 'dev1',
      action: 'stop',
      detail: 'AWS: stopped ec2-instance web at 2026-12-02 19:02 CET, once starting had finished',
    });
    assert.doesNotMatch(JSON.stringify(done.blocks), /:warning:/);
  });
});

describe('Slack announcement of a morning wake-up', function () {
  const report = { namespace: 'dev1', changed: [{ kind: 'Deployment', name: 'web', from: 0, to: 2 }], unchanged: 0, durationMs: 1200 };

  it('says good morning, when, that it was scheduled and when it stops; a start by a person reads as before', function () {
    const woke = eventMessage({
      kind: 'started',
      namespace: 'dev1',
      by: 'scheduler',
      shutdownAt: '2026-12-08T18:00:00.000Z',
      report,
      wokeUp: { at: '2026-12-08T07:00:00.000Z', clock: '08:00 CET' },
    });
    assert.equal(woke.text, 'Good morning: dev1 was started at 08:00 CET, as scheduled');
    assert.match(
      JSON.stringify(woke.blocks),
      /:sunrise: Good morning: dev1 was started at 08:00 CET, as scheduled: 1 workload restored; shuts down <!date/,
    );
    const byHand = eventMessage({ kind: 'started', namespace: 'dev1', by: 'U0ALICE0001', shutdownAt: null, report });
    assert.equal(byHand.text, 'dev1 started by <@U0ALICE0001>: 1 workload restored');
  });

  it('a start a stop interrupted says so, and neither a shutdown nor "no scheduled shutdown": the stop follows', function () {
    const readiness = {
      since: '2026-12-08T07:00:00.000Z',
      deadline: '2026-12-08T07:05:00.000Z',
      groups: [{ order: 0, workloads: [{ kind: 'StatefulSet', name: 'db' }], wokenAt: '2026-12-08T07:00:00.000Z' }],
      durationMs: 3_000,
      interrupted: 'the stop by U0BOB000001',
    };
    const interrupted = eventMessage({
      kind: 'started',
      namespace: 'dev1',
      by: 'U0ALICE0001',
      shutdownAt: null,
      report: { ...report, readiness },
    });
    const said = JSON.stringify(interrupted.blocks);
    assert.match(said, /the wait for Ready was interrupted by the stop by U0BOB000001 after 3 s\./);
    assert.doesNotMatch(said, /shuts down|no scheduled shutdown/);
  });
});

describe('Slack announcement of workloads that woke while stopped', function () {
  it('names each by its field manager as code, so a manager named like a link, a mention or markup stays a name', function () {
    const hostile = ['https://login.example/reset', '<!channel>', '*urgent* _click_', 'a`b <https://x|y>'];
    const told = eventMessage({
      kind: 'drift',
      namespace: 'dev1',
      mode: 'restop',
      workloads: [
        ...hostile.map((by, i) => ({ kind: 'Deployment', name: `w${i}`, replicas: 1, created: false, by, restopped: true })),
        { kind: 'Deployment', name: 'quiet', replicas: 2, created: true, restopped: true },
      ],
    });
    const section = (told.blocks[0] as unknown as { text: { text: string } }).text.text;
    for (const said of [told.text, section]) {
      assert.match(said, /Deployment w0 scaled to 1 by field manager `https:\/\/login\.example\/reset`/);
      assert.match(said, /by field manager `&lt;!channel&gt;`/);
      assert.match(said, /by field manager `\*urgent\* _click_`/);
      assert.ok(!/<(!|https?:)/.test(said), `no mention or link markup: ${said}`);
      assert.equal((said.match(/`/g) ?? []).length % 2, 0, 'every code span closed');
      assert.match(said, /Deployment quiet created at 2 by an unknown field manager\. Put back to sleep/);
    }
  });
});
