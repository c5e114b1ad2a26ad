/**
 * The story of an environment as plain functions: the history's bounds, and the one
 * sentence `why` answers, at fixed instants in Berlin (CET in December).
 */
import assert from 'node:assert/strict';
import type { EnvironmentState, HistoryEntry } from '../src/workflows/environment/definitions';
import { appended, DETAIL_CHARS, HISTORY_BYTES, HISTORY_ENTRIES, whyNext } from '../src/workflows/environment/story';
import { historyMessage, whyMessage } from '../src/slack/replies';
import { weekdayPolicy } from './support/policies';

const policy = weekdayPolicy({ timeZone: 'Europe/Berlin', wakeTime: '08:00' });
/** Thu 3 Dec 2026, local (CET, UTC+1). */
const at = (local: string) => new Date(`${local}+01:00`);
const entry = (action: HistoryEntry['action'], by: string, local: string, detail?: string): HistoryEntry => ({
  action,
  by,
  at: at(local).toISOString(),
  ...(detail ? { detail } : {}),
});
const running = (overrides: Partial<EnvironmentState> = {}): EnvironmentState => ({
  workloads: 'running',
  enabled: true,
  shutdownAt: at('2026-12-03T19:00:00').toISOString(),
  prolongedMinutes: 0,
  warningsSent: [],
  lastAction: null,
  ...overrides,
});

describe('story: why, in one sentence', function () {
  const cases: { name: string; state: EnvironmentState; history: HistoryEntry[]; now: string; sentence: string; mentions?: string[] }[] = [
    {
      name: 'running on the schedule',
      state: running(),
      history: [entry('start', 'U0ANA', '2026-12-03T08:00:00')],
      now: '2026-12-03T12:00:00',
      sentence: 'stops today 19:00 CET (shutdown time 19:00 Europe/Berlin)',
    },
    {
      name: 'prolonged once',
      state: running({ shutdownAt: at('2026-12-03T20:00:00').toISOString(), prolongedMinutes: 60 }),
      history: [entry('start', 'U0BOB', '2026-12-03T08:00:00'), entry('prolongate', 'U0ANA', '2026-12-03T17:40:00', '+1h')],
      now: '2026-12-03T17:45:00',
      sentence: 'stops today 20:00 CET (prolonged 1h by U0ANA at 17:40)',
      mentions: ['U0ANA'],
    },
    {
      name: 'prolonged twice: the last one named; those before the last start not counted',
      state: running({ shutdownAt: at('2026-12-03T20:30:00').toISOString(), prolongedMinutes: 90 }),
      history: [
        entry('prolongate', 'U0OLD', '2026-12-02T18:00:00', '+4h'),
        entry('start', 'U0BOB', '2026-12-03T08:00:00'),
        entry('prolongate', 'U0ANA', '2026-12-03T17:40:00', '+1h'),
        entry('warning', 'scheduler', '2026-12-03T19:30:00', '1h before the shutdown at 20:30 CET'),
        entry('prolongate', 'api:ci', '2026-12-03T18:10:00', '+30m'),
      ],
      now: '2026-12-03T18:15:00',
      sentence: 'stops today 20:30 CET (prolonged 1h30m, last by api:ci at 18:10)',
      mentions: ['api:ci'],
    },
    {
      name: 'disabled by its label, running',
      state: running({ enabled: false, shutdownAt: null }),
      history: [entry('start', 'scheduler', '2026-11-30T08:00:00'), entry('disable', 'kubectl', '2026-11-30T10:00:00')],
      now: '2026-12-03T12:00:00',
      sentence: 'not scheduled: label scheduler=disabled since Mon by kubectl; it stays up until someone stops it',
      mentions: ['kubectl'],
    },
    {
      name: 'disabled today',
      state: running({ enabled: false, shutdownAt: null }),
      history: [entry('disable', 'kubectl', '2026-12-03T09:12:00')],
      now: '2026-12-03T12:00:00',
      sentence: 'not scheduled: label scheduler=disabled since today 09:12 by kubectl; it stays up until someone stops it',
      mentions: ['kubectl'],
    },
    {
      name: 'stopped on schedule (a drift re-stop since is not the stop), waking in the morning',
      state: running({ workloads: 'stopped', shutdownAt: null, wakeAt: at('2026-12-04T08:00:00').toISOString() }),
      history: [
        entry('scheduled-stop', 'scheduler', '2026-12-03T19:00:00', '3 workloads scaled to 0'),
        entry('scheduled-stop', 'scheduler', '2026-12-03T20:10:00', 'put back to sleep after they woke: Deployment api'),
      ],
      now: '2026-12-03T21:00:00',
      sentence: 'stopped by the schedule today 19:00 CET; wakes tomorrow 08:00 CET',
    },
    {
      name: 'stopped by hand, no wake time',
      state: running({ workloads: 'stopped', shutdownAt: null }),
      history: [entry('stop', 'U0ANA', '2026-12-03T10:00:00')],
      now: '2026-12-03T11:00:00',
      sentence: 'stopped by U0ANA today 10:00 CET; stays stopped until someone starts it (no wake time)',
      mentions: ['U0ANA'],
    },
    {
      name: 'the AWS half of last night’s stop failed',
      state: running({
        workloads: 'stopped',
        shutdownAt: null,
        wakeAt: at('2026-12-04T08:00:00').toISOString(),
        problems: [{ half: 'aws', action: 'stop', detail: 'AWS could not stop: AWS credentials expired' }],
      }),
      history: [
        entry('scheduled-stop', 'scheduler', '2026-12-02T19:00:00', '3 workloads scaled to 0; AWS could not stop: AWS credentials expired'),
      ],
      now: '2026-12-03T07:30:00',
      sentence: 'did not stop last night: AWS could not stop: AWS credentials expired; Kubernetes stopped at 19:00:00',
    },
    {
      name: 'the Kubernetes half of the scheduled stop failed',
      state: running({
        shutdownAt: null,
        problems: [{ half: 'kubernetes', action: 'stop', detail: 'Kubernetes could not stop: forbidden' }],
      }),
      history: [entry('scheduled-stop', 'scheduler', '2026-12-03T19:00:00', 'failed: forbidden')],
      now: '2026-12-03T20:00:00',
      sentence: 'did not stop today at 19:00 CET: Kubernetes could not stop: forbidden; no stop is planned until it is started or reset',
    },
    {
      name: 'stopped and disabled',
      state: running({ workloads: 'stopped', enabled: false, shutdownAt: null }),
      history: [entry('stop', 'U0ANA', '2026-12-03T10:00:00'), entry('disable', 'kubectl', '2026-12-03T10:05:00')],
      now: '2026-12-03T11:00:00',
      sentence:
        'stopped by U0ANA today 10:00 CET; not scheduled: label scheduler=disabled since today 10:05 by kubectl, so it stays stopped until started',
      mentions: ['U0ANA', 'kubectl'],
    },
    {
      name: 'stopping',
      state: running({ workloads: 'stopping' }),
      history: [entry('stop', 'U0ANA', '2026-12-03T10:00:00')],
      now: '2026-12-03T10:00:05',
      sentence: 'stopping now (asked by U0ANA)',
      mentions: ['U0ANA'],
    },
  ];
  for (const c of cases) {
    it(c.name, function () {
      const why = whyNext(c.state, c.history, policy, at(c.now));
      assert.equal(why.sentence, c.sentence);
      assert.deepEqual(why.mentions.sort(), (c.mentions ?? []).sort());
    });
  }
});

describe('story: the history is bounded', function () {
  it(`keeps the last ${HISTORY_ENTRIES} entries`, function () {
    let history: HistoryEntry[] = [];
    for (let i = 0; i < HISTORY_ENTRIES + 10; i++) history = appended(history, entry('prolongate', `U${i}`, '2026-12-03T10:00:00', '+1h'));
    assert.equal(history.length, HISTORY_ENTRIES);
    assert.equal(history[0]!.by, 'U10');
    assert.equal(history.at(-1)!.by, `U${HISTORY_ENTRIES + 9}`);
  });

  it(`cuts a long detail and stays within ${HISTORY_BYTES} bytes of JSON, dropping the oldest`, function () {
    let history: HistoryEntry[] = [];
    for (let i = 0; i < HISTORY_ENTRIES; i++) history = appended(history, entry('stop', `U${i}`, '2026-12-03T10:00:00', 'ü'.repeat(1000)));
    assert.ok(history.every((e) => e.detail!.length === DETAIL_CHARS));
    assert.ok(Buffer.byteLength(JSON.stringify(history)) <= HISTORY_BYTES);
    assert.equal(history.at(-1)!.by, `U${HISTORY_ENTRIES - 1}`, 'the newest is kept');
    assert.ok(history.length < HISTORY_ENTRIES);
  });
});

describe('story in Slack', function () {
  it('escapes what the sentence and the entries quote; only recorded ids become mentions', function () {
    const why = whyMessage('dev1', {
      sentence: 'did not stop last night: AWS could not stop: <!channel> U0BOB; asked by U0ANA',
      mentions: ['U0ANA'],
    });
    const text = JSON.stringify(why.blocks);
    assert.ok(text.includes('&lt;!channel&gt;'), text);
    assert.ok(text.includes('<@U0ANA>'), text);
    assert.ok(!text.includes('<@U0BOB>'), 'a word like a user id in a detail is no mention');
    const history = historyMessage('dev1', [entry('stop', 'U0ANA', '2026-12-03T10:00:00', 'failed: <https://evil|click> by U0BOB')]);
    const shown = JSON.stringify(history.blocks) + history.text;
    assert.ok(shown.includes('&lt;https://evil|click&gt;'), shown);
    assert.ok(shown.includes('by <@U0ANA>') && !shown.includes('<@U0BOB>'), shown);
  });
});
