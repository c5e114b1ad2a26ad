/** Owners: the annotation's parsing and validation, how they enter the policy, how Slack shows them, and who counts as one. */
import assert from 'node:assert/strict';
import { eventMessage } from '../src/activities/slack';
import type { EnvironmentSummary } from '../src/client/environments';
import { planReconcile, policyFor } from '../src/domain/enrolment';
import { MAX_OWNERS, OWNERS_ANNOTATION, ownersValue, ownership } from '../src/domain/owners';
import { ownerMention, ownerMentions } from '../src/slack/blocks';
import { environmentListMessage, statusMessage } from '../src/slack/replies';
import type { EnvironmentStatus } from '../src/workflows/environment/definitions';
import { everyDayPolicy } from './support/policies';
import { markupIn, slackFields, visibleText } from './support/slack';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `U0OWNER${String(i).padStart(3, '0')}`);

describe('owners', function () {
  describe('the annotation devenv-scheduler/owners', function () {
    const valid: [value: string, owners: string[]][] = [
      ['U024BE7LH', ['U024BE7LH']],
      ['U024BE7LH,S0614TZR7', ['U024BE7LH', 'S0614TZR7']],
      [' U024BE7LH , W0G9QF9C6  S0614TZR7 ', ['U024BE7LH', 'W0G9QF9C6', 'S0614TZR7']],
      ['S0614TZR7,U024BE7LH,S0614TZR7', ['S0614TZR7', 'U024BE7LH']],
      [ids(MAX_OWNERS).join(','), ids(MAX_OWNERS)],
    ];
    for (const [value, owners] of valid) {
      it(`accepts ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`, function () {
        assert.deepEqual(ownersValue.parse(value), owners);
      });
    }

    const hostile = '<https://evil.example|click>'.repeat(300);
    const invalid: [value: string, message: RegExp][] = [
      ['@ana', /^"@ana" is a handle; owners are Slack ids: a member id \(U…, "Copy member ID" in the profile\) or a user-group id \(S…\)$/],
      ['U024BE7LH,@ana', /^"@ana" is a handle/],
      ['<!channel>', /^"<!channel>" is not a Slack user id \(U…, W…\) or user-group id \(S…\)$/],
      ['U024BE7LH,<!here>', /^"<!here>" is not a Slack user id/],
      ['<@U024BE7LH>', /^"<@U024BE7LH>" is not a Slack user id/],
      ['<!subteam^S0614TZR7>', /^"<!subteam\^S0614TZR7>" is not a Slack user id/],
      ['*bold*', /^"\*bold\*" is not a Slack user id/],
      ['U024BE7LH,_italic_', /^"_italic_" is not a Slack user id/],
      ['<https://evil.example|click>', /^"<https:\/\/evil.example\|click>" is not a Slack user id/],
      ['https://evil.example', /^"https:\/\/evil.example" is not a Slack user id/],
      ['u024be7lh', /^"u024be7lh" is not a Slack id: ids are upper-case letters and digits$/],
      ['C0123ABCD', /^"C0123ABCD" is not a Slack user id/],
      ['U1', /^"U1" is not a Slack user id/],
      ['', /^must name at least one Slack user id \(U…\) or user-group id \(S…\)$/],
      [' , ', /^must name at least one/],
      [ids(MAX_OWNERS + 1).join(','), /^names 21 owners; at most 20 \(use a user group for a larger team\)$/],
      [ids(500).join(' '), /^names 500 owners; at most 20/],
      [hostile, /^"<https:\/\/evil.example\|click><https:\/\/evi…" is not a Slack user id/],
    ];
    for (const [value, message] of invalid) {
      it(`refuses ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}, saying why`, function () {
        const parsed = ownersValue.safeParse(value);
        assert.equal(parsed.success, false);
        assert.match(parsed.error!.issues[0]!.message, message);
      });
    }

    it('enters the policy valid and whole, or not at all, with the admission warning the other annotations give', function () {
      const defaults = everyDayPolicy();
      assert.deepEqual(policyFor(defaults, { [OWNERS_ANNOTATION]: 'U024BE7LH,S0614TZR7' }), {
        policy: { ...defaults, owners: ['U024BE7LH', 'S0614TZR7'] },
        warnings: [],
      });
      assert.deepEqual(
        policyFor(defaults, {}),
        { policy: defaults, warnings: [] },
        'absent, not an empty list: policies compare key by key',
      );
      const partly = policyFor(defaults, { [OWNERS_ANNOTATION]: 'U024BE7LH,<!channel>', 'devenv-scheduler/shutdown-time': '20:00' });
      assert.deepEqual(
        partly.policy,
        { ...defaults, shutdownTime: '20:00', ownersInvalid: true },
        'ignored as a whole, and said to be invalid; the other annotations still apply',
      );
      assert.deepEqual(partly.warnings, [
        'annotation devenv-scheduler/owners="U024BE7LH,<!channel>" ignored: "<!channel>" is not a Slack user id (U…, W…) or user-group id (S…)',
      ]);
      const long = policyFor(defaults, { [OWNERS_ANNOTATION]: ids(500).join(',') });
      assert.equal(long.policy.owners, undefined);
      assert.equal(long.policy.ownersInvalid, true);
      assert.match(
        long.warnings[0]!,
        /^annotation devenv-scheduler\/owners="U0OWNER000,U0OWNER001,.{60,}"… \(5499 characters\) ignored: names 500 owners/,
      );
      assert.ok(long.warnings[0]!.length < 250, 'a very long value is cut in the warning');
      // A service default never carries owners into a namespace that names none.
      assert.equal(policyFor({ ...defaults, owners: ['U0STRAY001'] }, {}).policy.owners, undefined);
    });
  });

  it('the reconciler re-plans an environment whose owners changed, and only then; an invalid value keeps the owners recorded', function () {
    const defaults = everyDayPolicy();
    const decide = (recorded: string[] | undefined, annotation: string | undefined) =>
      planReconcile({
        namespaces: [
          {
            name: 'dev1',
            labels: { scheduler: 'enabled' },
            annotations: annotation === undefined ? {} : { [OWNERS_ANNOTATION]: annotation },
            terminating: false,
          },
        ],
        environments: [
          {
            namespace: 'dev1',
            enabled: true,
            runId: 'run',
            startedAt: '2026-12-01T09:00:00.000Z',
            policy: { ...defaults, ...(recorded ? { owners: recorded } : {}) },
            dispatchAheadMs: 0,
          },
        ],
        snapshotAt: new Date('2026-12-01T10:00:00Z'),
        rules: { systemNamespaces: [], infrastructureNamespaces: [] },
        defaults,
        dispatchAheadMs: 0,
      })[0]!;
    const replan = decide(undefined, 'U024BE7LH');
    assert.equal(replan.action, 'replan');
    assert.deepEqual(replan.action === 'replan' && replan.policy.owners, ['U024BE7LH']);
    assert.equal(decide(['U024BE7LH'], 'U024BE7LH').action, 'unchanged');
    assert.equal(decide(['U024BE7LH'], ' U024BE7LH,U024BE7LH ').action, 'unchanged', 'the same owners written otherwise');
    assert.equal(decide(['U024BE7LH'], undefined).action, 'replan', 'owners removed');
    assert.equal(decide(['U024BE7LH'], '@ana').action, 'unchanged', 'an invalid value keeps the owners recorded');
    const invalid = decide(undefined, '@ana');
    assert.equal(invalid.action, 'replan', 'an invalid value where none were recorded: said so, for the owners-only rule');
    assert.deepEqual(invalid.action === 'replan' && [invalid.policy.owners, invalid.policy.ownersInvalid], [undefined, true]);
    assert.equal(decide(undefined, undefined).action, 'unchanged');
  });

  describe('in Slack', function () {
    it('users are <@U…>, groups <!subteam^S…>, anything else stays an escaped word', function () {
      assert.equal(ownerMention('U024BE7LH').source, '<@U024BE7LH>');
      assert.equal(ownerMention('W0G9QF9C6').source, '<@W0G9QF9C6>');
      assert.equal(ownerMention('S0614TZR7').source, '<!subteam^S0614TZR7>');
      assert.equal(ownerMention('<!channel>').source, '&lt;!channel&gt;');
      assert.equal(ownerMention('<https://evil.example|x>').source, '&lt;https://evil.example|x&gt;');
      assert.equal(ownerMentions(['U024BE7LH', 'S0614TZR7']).source, '<@U024BE7LH>, <!subteam^S0614TZR7>');
    });

    it('a warning mentions its owners in the blocks and the notification text; one without owners mentions no one', function () {
      const base = {
        kind: 'warning',
        namespace: 'dev1',
        shutdownAt: '2026-01-05T19:00:00.000Z',
        minutesLeft: 60,
        offsetMinutes: 60,
      } as const;
      const owned = eventMessage({ ...base, owners: ['U024BE7LH', 'S0614TZR7'] });
      assert.equal(owned.text, 'dev1 shuts down in 60 minutes (owners: <@U024BE7LH>, <!subteam^S0614TZR7>)');
      assert.match(visibleText({ ...owned }), /Owners: <@U024BE7LH>, <!subteam\^S0614TZR7>/);
      const markup = slackFields({ ...owned }).flatMap(markupIn);
      assert.deepEqual([...new Set(markup)].sort(), ['<!subteam^S0614TZR7>', '<@U024BE7LH>']);
      const unowned = eventMessage(base);
      assert.equal(unowned.text, 'dev1 shuts down in 60 minutes');
      assert.deepEqual(slackFields({ ...unowned }).flatMap(markupIn), []);
    });

    it('a warning given owners that are not ids (never from a validated annotation) still pings, links and formats nothing', function () {
      const owners = ['<!channel>', '<!here>', '<https://evil.example|click>', '<@U0OTHER01|x>', 'x'.repeat(5000)];
      const message = eventMessage({
        kind: 'warning',
        namespace: 'dev1',
        shutdownAt: '2026-01-05T19:00:00.000Z',
        minutesLeft: 15,
        offsetMinutes: 15,
        owners,
      });
      assert.deepEqual(slackFields({ ...message }).flatMap(markupIn), []);
      assert.ok(visibleText({ ...message }).includes('<!channel>'), 'shown as typed');
    });

    it("list: the reader's own environments first, marked; status names the owners", function () {
      const summary = (namespace: string, owners?: string[]): EnvironmentSummary => ({
        namespace,
        phase: 'running',
        enabled: true,
        nextShutdown: '2026-01-05T19:00:00.000Z',
        policy: everyDayPolicy(owners ? { owners } : {}),
        dispatchAheadMs: null,
        runId: 'run',
        startedAt: '2026-01-05T08:00:00.000Z',
      });
      const now = new Date('2026-01-05T12:00:00.000Z');
      const all = [summary('alpha'), summary('beta', ['U024BE7LH']), summary('gamma'), summary('zeta', ['S0614TZR7'])];
      const text = visibleText({ ...environmentListMessage(all, now, new Set(['beta', 'zeta'])) });
      const order = [...text.matchAll(/\*(alpha|beta|gamma|zeta)\*.*$/gm)].map((m) => [m[1], m[0].endsWith('· yours')]);
      assert.deepEqual(order, [
        ['beta', true],
        ['zeta', true],
        ['alpha', false],
        ['gamma', false],
      ]);
      assert.deepEqual(
        [...visibleText({ ...environmentListMessage(all, now) }).matchAll(/\*(\w+)\*/g)].map((m) => m[1]),
        ['alpha', 'beta', 'gamma', 'zeta'],
        'no one own: in name order, as before',
      );
      const status = {
        namespace: 'beta',
        phase: 'running',
        enabled: true,
        shutdownAt: null,
        shutdownDescription: null,
        wakeDescription: null,
        prolongedMinutes: 0,
        warningsSent: [],
        lastAction: null,
        workloads: 'running',
        policy: everyDayPolicy({ owners: ['U024BE7LH', 'S0614TZR7'] }),
      } satisfies EnvironmentStatus;
      assert.match(visibleText({ ...statusMessage(status, undefined) }), /Owners: <@U024BE7LH>, <!subteam\^S0614TZR7>/);
    });
  });

  describe('who is an owner', function () {
    const groups: Record<string, string[]> = { S0TEAM0001: ['U0CAROL001'] };
    const membersOf = async (group: string) => {
      const members = groups[group];
      if (!members) throw new Error('no_such_subteam');
      return members;
    };
    const cases: [
      user: string,
      owners: string[],
      reader: typeof membersOf | undefined,
      expected: { owner: boolean; unreadGroups: string[] },
    ][] = [
      ['U0ALICE001', ['U0ALICE001'], undefined, { owner: true, unreadGroups: [] }],
      ['U0CAROL001', ['U0ALICE001', 'S0TEAM0001'], membersOf, { owner: true, unreadGroups: [] }],
      ['U0BOB00001', ['U0ALICE001', 'S0TEAM0001'], membersOf, { owner: false, unreadGroups: [] }],
      ['U0CAROL001', ['S0GONE0001', 'S0TEAM0001'], membersOf, { owner: true, unreadGroups: [] }],
      ['U0BOB00001', ['S0GONE0001', 'S0TEAM0001'], membersOf, { owner: false, unreadGroups: ['S0GONE0001'] }],
      ['U0CAROL001', ['S0TEAM0001'], undefined, { owner: false, unreadGroups: ['S0TEAM0001'] }],
      ['U0BOB00001', [], membersOf, { owner: false, unreadGroups: [] }],
    ];
    for (const [user, owners, reader, expected] of cases) {
      it(`${user} of ${owners.join(',') || 'no owners'}${reader ? '' : ' (groups unreadable)'}: ${expected.owner ? 'an owner' : 'not one'}`, async function () {
        assert.deepEqual(await ownership(user, owners, reader), expected);
      });
    }
  });
});
