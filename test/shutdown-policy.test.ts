/**
 * Table-driven tests for the pure shutdown-time rules. Every expectation is an exact UTC
 * instant or an exact string, worked out by hand from the zone's offsets:
 *   Europe/Berlin     CET +01:00, CEST +02:00; 2026-03-29 01:00Z 02:00->03:00, 2026-10-25 01:00Z 03:00->02:00
 *   America/New_York  EST -05:00, EDT -04:00; 2026-03-08 07:00Z 02:00->03:00, 2026-11-01 06:00Z 02:00->01:00
 *   Pacific/Auckland  NZDT +13:00 (Jan), NZST +12:00; 2026-04-05 14:00Z 03:00->02:00
 *   Asia/Kolkata      IST +05:30, no DST
 *   Asia/Jerusalem    IST +02:00 in January
 * 2026-01-01 is a Thursday; all four DST change days above are Sundays.
 */
import { strict as assert } from 'node:assert';
import {
  defaultShutdownOn,
  isWorkingDay,
  nextWakeUp,
  plannedWarnings,
  samePolicy,
  shutdownAfterStart,
  type EnvironmentPolicy,
  type Weekday,
} from '../src/domain/shutdown-policy';

const MON_FRI: Weekday[] = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'];
const EVERY_DAY: Weekday[] = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function policy(overrides: Partial<EnvironmentPolicy> = {}): EnvironmentPolicy {
  return {
    shutdownTime: '19:00',
    timeZone: 'UTC',
    workingDays: MON_FRI,
    holidays: [],
    warningOffsetsMinutes: [60, 30, 15],
    maxProlongationMinutes: 240,
    afterHoursWindowMinutes: 120,
    ...overrides,
  };
}

const at = (iso: string): Date => {
  const date = new Date(iso);
  assert.ok(!Number.isNaN(date.getTime()), `bad test instant ${iso}`);
  return date;
};
const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

describe('shutdown-policy', () => {
  describe('isWorkingDay', () => {
    const cases: { name: string; now: string; policy: Partial<EnvironmentPolicy>; expected: boolean }[] = [
      { name: 'UTC Thursday, Mon-Fri', now: '2026-01-15T12:00:00Z', policy: {}, expected: true },
      { name: 'UTC Friday late evening, Mon-Fri', now: '2026-01-16T23:59:59Z', policy: {}, expected: true },
      { name: 'UTC Saturday, Mon-Fri', now: '2026-01-17T00:00:00Z', policy: {}, expected: false },
      { name: 'UTC Sunday, Mon-Fri', now: '2026-01-18T12:00:00Z', policy: {}, expected: false },
      { name: 'UTC Monday just after midnight, Mon-Fri', now: '2026-01-19T00:00:00Z', policy: {}, expected: true },
      {
        name: 'Saturday counts when Sat is a working day',
        now: '2026-01-17T12:00:00Z',
        policy: { workingDays: EVERY_DAY },
        expected: true,
      },
      // holidays are local dates in the policy's zone
      { name: 'UTC holiday', now: '2026-12-24T12:00:00Z', policy: { holidays: ['2026-12-24'] }, expected: false },
      { name: 'day after a UTC holiday', now: '2026-12-25T00:00:00Z', policy: { holidays: ['2026-12-24'] }, expected: true },
      {
        name: 'Berlin holiday starts at local midnight while UTC is still the day before (23:30Z Wed = 00:30 Thu 24 Dec)',
        now: '2026-12-23T23:30:00Z',
        policy: { timeZone: 'Europe/Berlin', holidays: ['2026-12-24'] },
        expected: false,
      },
      {
        name: 'Berlin holiday is over at local midnight while UTC is still on the holiday date (23:30Z Thu 24 = 00:30 Fri 25)',
        now: '2026-12-24T23:30:00Z',
        policy: { timeZone: 'Europe/Berlin', holidays: ['2026-12-24'] },
        expected: true,
      },
      {
        name: 'New York holiday seen from the next UTC day (02:00Z Sat 4 Jul = 22:00 EDT Fri 3 Jul)',
        now: '2026-07-04T02:00:00Z',
        policy: { timeZone: 'America/New_York', holidays: ['2026-07-03'] },
        expected: false,
      },
      {
        name: 'New York: the evening before the holiday is still a working day (02:00Z Fri 3 Jul = 22:00 Thu 2 Jul)',
        now: '2026-07-03T02:00:00Z',
        policy: { timeZone: 'America/New_York', holidays: ['2026-07-03'] },
        expected: true,
      },
      {
        name: 'a holiday on a weekend stays a day off',
        now: '2026-01-17T12:00:00Z',
        policy: { holidays: ['2026-01-17'] },
        expected: false,
      },
      {
        name: 'an unrelated holiday does not matter',
        now: '2026-01-15T12:00:00Z',
        policy: { holidays: ['2026-01-14', '2026-01-16'] },
        expected: true,
      },
      // custom working days, Sun-Thu (Israel)
      {
        name: 'Sun-Thu: Sunday works',
        now: '2026-01-18T08:00:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: true,
      },
      {
        name: 'Sun-Thu: Thursday works',
        now: '2026-01-15T08:00:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: true,
      },
      {
        name: 'Sun-Thu: Friday is off',
        now: '2026-01-16T08:00:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: false,
      },
      {
        name: 'Sun-Thu: Saturday is off',
        now: '2026-01-17T08:00:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: false,
      },
      {
        name: 'Sun-Thu: 22:30Z Saturday is already 00:30 Sunday in Jerusalem',
        now: '2026-01-17T22:30:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: true,
      },
      { name: 'Mon,Wed,Fri: Tuesday is off', now: '2026-01-13T12:00:00Z', policy: { workingDays: ['Mon', 'Wed', 'Fri'] }, expected: false },
      { name: 'Mon,Wed,Fri: Wednesday works', now: '2026-01-14T12:00:00Z', policy: { workingDays: ['Mon', 'Wed', 'Fri'] }, expected: true },
      { name: 'no working days at all: never', now: '2026-01-14T12:00:00Z', policy: { workingDays: [] }, expected: false },
      // zones far from UTC
      {
        name: 'Auckland: 12:00Z Fri is 01:00 Sat NZDT (off)',
        now: '2026-01-16T12:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: false,
      },
      {
        name: 'Auckland: 20:00Z Sun is 09:00 Mon NZDT (working)',
        now: '2026-01-18T20:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: true,
      },
      {
        name: 'Kolkata: 19:00Z Fri is 00:30 Sat IST (off)',
        now: '2026-01-16T19:00:00Z',
        policy: { timeZone: 'Asia/Kolkata' },
        expected: false,
      },
      {
        name: 'Kolkata: 18:29Z Fri is 23:59 Fri IST (working)',
        now: '2026-01-16T18:29:00Z',
        policy: { timeZone: 'Asia/Kolkata' },
        expected: true,
      },
      {
        name: 'New York: 03:00Z Sat is 22:00 Fri EST (working)',
        now: '2026-01-17T03:00:00Z',
        policy: { timeZone: 'America/New_York' },
        expected: true,
      },
      {
        name: 'New York: 03:00Z Mon is 22:00 Sun EST (off)',
        now: '2026-01-19T03:00:00Z',
        policy: { timeZone: 'America/New_York' },
        expected: false,
      },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.expected}`, () => {
        assert.equal(isWorkingDay(at(c.now), policy(c.policy)), c.expected);
      });
    }
  });

  describe('defaultShutdownOn', () => {
    const berlin = { timeZone: 'Europe/Berlin', workingDays: EVERY_DAY };
    const newYork = { timeZone: 'America/New_York', workingDays: EVERY_DAY };
    const cases: { name: string; now: string; policy: Partial<EnvironmentPolicy>; expected: string | null }[] = [
      { name: 'UTC working day, asked in the morning', now: '2026-01-15T08:00:00Z', policy: {}, expected: '2026-01-15T19:00:00.000Z' },
      {
        name: 'UTC working day, asked after the shutdown (same day)',
        now: '2026-01-15T22:00:00Z',
        policy: {},
        expected: '2026-01-15T19:00:00.000Z',
      },
      {
        name: 'UTC custom shutdown time 17:45',
        now: '2026-01-15T08:00:00Z',
        policy: { shutdownTime: '17:45' },
        expected: '2026-01-15T17:45:00.000Z',
      },
      {
        name: 'shutdown at 00:00 is the start of the local day',
        now: '2026-01-15T08:00:00Z',
        policy: { shutdownTime: '00:00' },
        expected: '2026-01-15T00:00:00.000Z',
      },
      { name: 'shutdown at 23:59', now: '2026-01-15T08:00:00Z', policy: { shutdownTime: '23:59' }, expected: '2026-01-15T23:59:00.000Z' },
      {
        name: 'seconds of "now" never leak into the result',
        now: '2026-01-15T08:12:34.567Z',
        policy: {},
        expected: '2026-01-15T19:00:00.000Z',
      },
      { name: 'Saturday: none', now: '2026-01-17T08:00:00Z', policy: {}, expected: null },
      { name: 'Sunday: none', now: '2026-01-18T08:00:00Z', policy: {}, expected: null },
      { name: 'holiday: none', now: '2026-12-24T08:00:00Z', policy: { holidays: ['2026-12-24'] }, expected: null },
      {
        name: 'Berlin holiday by local date while UTC says the day before: none',
        now: '2026-12-23T23:30:00Z',
        policy: { timeZone: 'Europe/Berlin', holidays: ['2026-12-24'] },
        expected: null,
      },
      {
        name: 'Sun-Thu: Sunday in Jerusalem, 19:00 IST = 17:00Z',
        now: '2026-01-18T06:00:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: '2026-01-18T17:00:00.000Z',
      },
      {
        name: 'Sun-Thu: Friday in Jerusalem: none',
        now: '2026-01-16T06:00:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: null,
      },

      // Europe/Berlin, spring forward on Sun 2026-03-29
      {
        name: 'Berlin day before spring forward: 19:00 CET = 18:00Z',
        now: '2026-03-28T08:00:00Z',
        policy: berlin,
        expected: '2026-03-28T18:00:00.000Z',
      },
      {
        name: 'Berlin spring-forward day: 19:00 CEST = 17:00Z',
        now: '2026-03-29T08:00:00Z',
        policy: berlin,
        expected: '2026-03-29T17:00:00.000Z',
      },
      {
        name: 'Berlin spring-forward day asked at 00:30 CET (before the change): still 19:00 CEST = 17:00Z',
        now: '2026-03-28T23:30:00Z',
        policy: berlin,
        expected: '2026-03-29T17:00:00.000Z',
      },
      {
        name: 'Berlin day after spring forward: 19:00 CEST = 17:00Z',
        now: '2026-03-30T08:00:00Z',
        policy: berlin,
        expected: '2026-03-30T17:00:00.000Z',
      },
      {
        name: 'Berlin 02:30 in the spring-forward gap moves forward by the gap to 03:30 CEST = 01:30Z (asked 00:30 CET)',
        now: '2026-03-28T23:30:00Z',
        policy: { ...berlin, shutdownTime: '02:30' },
        expected: '2026-03-29T01:30:00.000Z',
      },
      {
        name: 'Berlin 02:30 in the spring-forward gap moves forward by the gap to 03:30 CEST = 01:30Z (asked 12:00 CEST)',
        now: '2026-03-29T10:00:00Z',
        policy: { ...berlin, shutdownTime: '02:30' },
        expected: '2026-03-29T01:30:00.000Z',
      },
      {
        name: 'Berlin 02:00 (start of the gap) becomes 03:00 CEST = 01:00Z',
        now: '2026-03-29T10:00:00Z',
        policy: { ...berlin, shutdownTime: '02:00' },
        expected: '2026-03-29T01:00:00.000Z',
      },
      {
        name: 'Berlin 01:59 (just before the gap) is 01:59 CET = 00:59Z',
        now: '2026-03-29T10:00:00Z',
        policy: { ...berlin, shutdownTime: '01:59' },
        expected: '2026-03-29T00:59:00.000Z',
      },
      {
        name: 'Berlin 03:00 (end of the gap) is 03:00 CEST = 01:00Z',
        now: '2026-03-29T10:00:00Z',
        policy: { ...berlin, shutdownTime: '03:00' },
        expected: '2026-03-29T01:00:00.000Z',
      },
      // Europe/Berlin, fall back on Sun 2026-10-25: 02:00-02:59 happens twice
      {
        name: 'Berlin day before fall back: 19:00 CEST = 17:00Z',
        now: '2026-10-24T08:00:00Z',
        policy: berlin,
        expected: '2026-10-24T17:00:00.000Z',
      },
      {
        name: 'Berlin fall-back day: 19:00 CET = 18:00Z',
        now: '2026-10-25T08:00:00Z',
        policy: berlin,
        expected: '2026-10-25T18:00:00.000Z',
      },
      {
        name: 'Berlin day after fall back: 19:00 CET = 18:00Z',
        now: '2026-10-26T08:00:00Z',
        policy: berlin,
        expected: '2026-10-26T18:00:00.000Z',
      },
      {
        name: 'Berlin 02:30 in the repeated hour is the first occurrence, 02:30 CEST = 00:30Z (asked 00:30 CEST)',
        now: '2026-10-24T22:30:00Z',
        policy: { ...berlin, shutdownTime: '02:30' },
        expected: '2026-10-25T00:30:00.000Z',
      },
      {
        name: 'Berlin 02:30 in the repeated hour is the first occurrence, 02:30 CEST = 00:30Z (asked during the second 02:xx)',
        now: '2026-10-25T01:15:00Z',
        policy: { ...berlin, shutdownTime: '02:30' },
        expected: '2026-10-25T00:30:00.000Z',
      },
      {
        name: 'Berlin 02:30 in the repeated hour is the first occurrence, 02:30 CEST = 00:30Z (asked 12:00 CET)',
        now: '2026-10-25T11:00:00Z',
        policy: { ...berlin, shutdownTime: '02:30' },
        expected: '2026-10-25T00:30:00.000Z',
      },
      {
        name: 'Berlin 03:00 on fall-back day is after the change: 03:00 CET = 02:00Z',
        now: '2026-10-25T11:00:00Z',
        policy: { ...berlin, shutdownTime: '03:00' },
        expected: '2026-10-25T02:00:00.000Z',
      },

      // America/New_York, spring forward on Sun 2026-03-08
      {
        name: 'New York day before spring forward: 19:00 EST = 00:00Z next day',
        now: '2026-03-07T15:00:00Z',
        policy: newYork,
        expected: '2026-03-08T00:00:00.000Z',
      },
      {
        name: 'New York spring-forward day: 19:00 EDT = 23:00Z',
        now: '2026-03-08T15:00:00Z',
        policy: newYork,
        expected: '2026-03-08T23:00:00.000Z',
      },
      {
        name: 'New York day after spring forward: 19:00 EDT = 23:00Z',
        now: '2026-03-09T15:00:00Z',
        policy: newYork,
        expected: '2026-03-09T23:00:00.000Z',
      },
      {
        name: 'New York 02:30 in the spring-forward gap moves forward by the gap to 03:30 EDT = 07:30Z (asked 00:30 EST)',
        now: '2026-03-08T05:30:00Z',
        policy: { ...newYork, shutdownTime: '02:30' },
        expected: '2026-03-08T07:30:00.000Z',
      },
      {
        name: 'New York 02:30 in the spring-forward gap moves forward by the gap to 03:30 EDT = 07:30Z (asked 10:00 EDT)',
        now: '2026-03-08T14:00:00Z',
        policy: { ...newYork, shutdownTime: '02:30' },
        expected: '2026-03-08T07:30:00.000Z',
      },
      // America/New_York, fall back on Sun 2026-11-01: 01:00-01:59 happens twice
      {
        name: 'New York day before fall back: 19:00 EDT = 23:00Z',
        now: '2026-10-31T15:00:00Z',
        policy: newYork,
        expected: '2026-10-31T23:00:00.000Z',
      },
      {
        name: 'New York fall-back day: 19:00 EST = 00:00Z next day',
        now: '2026-11-01T15:00:00Z',
        policy: newYork,
        expected: '2026-11-02T00:00:00.000Z',
      },
      {
        name: 'New York day after fall back: 19:00 EST = 00:00Z next day',
        now: '2026-11-02T15:00:00Z',
        policy: newYork,
        expected: '2026-11-03T00:00:00.000Z',
      },
      {
        name: 'New York 01:30 in the repeated hour is the first occurrence, 01:30 EDT = 05:30Z (asked 00:30 EDT)',
        now: '2026-11-01T04:30:00Z',
        policy: { ...newYork, shutdownTime: '01:30' },
        expected: '2026-11-01T05:30:00.000Z',
      },
      {
        name: 'New York 01:30 in the repeated hour is the first occurrence, 01:30 EDT = 05:30Z (asked 01:45 EDT)',
        now: '2026-11-01T05:45:00Z',
        policy: { ...newYork, shutdownTime: '01:30' },
        expected: '2026-11-01T05:30:00.000Z',
      },
      {
        name: 'New York 01:30 in the repeated hour is the first occurrence, 01:30 EDT = 05:30Z (asked 01:30 EST)',
        now: '2026-11-01T06:30:00Z',
        policy: { ...newYork, shutdownTime: '01:30' },
        expected: '2026-11-01T05:30:00.000Z',
      },
      {
        name: 'New York 01:30 in the repeated hour is the first occurrence, 01:30 EDT = 05:30Z (asked 10:00 EST)',
        now: '2026-11-01T15:00:00Z',
        policy: { ...newYork, shutdownTime: '01:30' },
        expected: '2026-11-01T05:30:00.000Z',
      },
      {
        name: 'New York 02:00 on fall-back day is after the change: 02:00 EST = 07:00Z',
        now: '2026-11-01T15:00:00Z',
        policy: { ...newYork, shutdownTime: '02:00' },
        expected: '2026-11-01T07:00:00.000Z',
      },

      // zones far from UTC: the local day decides, not the UTC day
      {
        name: 'Auckland: 20:00Z Thu is Fri 09:00 NZDT, so Fri 19:00 NZDT = 06:00Z Fri',
        now: '2026-01-15T20:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: '2026-01-16T06:00:00.000Z',
      },
      {
        name: 'Auckland: 20:00Z Sun is Mon 09:00 NZDT, so Mon 19:00 NZDT = 06:00Z Mon',
        now: '2026-01-18T20:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: '2026-01-19T06:00:00.000Z',
      },
      {
        name: 'Auckland: 12:00Z Fri is Sat 01:00 NZDT: none',
        now: '2026-01-16T12:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: null,
      },
      {
        name: 'Auckland: Fri before NZ fall back, 19:00 NZDT = 06:00Z',
        now: '2026-04-02T20:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: '2026-04-03T06:00:00.000Z',
      },
      {
        name: 'Auckland: Mon after NZ fall back, 19:00 NZST = 07:00Z',
        now: '2026-04-05T20:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: '2026-04-06T07:00:00.000Z',
      },
      {
        name: 'Kolkata: 19:00Z Thu is Fri 00:30 IST, so Fri 19:00 IST = 13:30Z Fri',
        now: '2026-01-15T19:00:00Z',
        policy: { timeZone: 'Asia/Kolkata' },
        expected: '2026-01-16T13:30:00.000Z',
      },
      {
        name: 'Kolkata: 19:00Z Fri is Sat 00:30 IST: none',
        now: '2026-01-16T19:00:00Z',
        policy: { timeZone: 'Asia/Kolkata' },
        expected: null,
      },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.expected ?? 'null'}`, () => {
        assert.equal(iso(defaultShutdownOn(at(c.now), policy(c.policy))), c.expected);
      });
    }

    it('gives the same instant whatever the time of day it is asked, on every day around both DST changes in both zones', () => {
      for (const zone of ['Europe/Berlin', 'America/New_York']) {
        for (const shutdownTime of ['00:00', '01:30', '02:30', '19:00', '23:59']) {
          const p = policy({ timeZone: zone, workingDays: EVERY_DAY, shutdownTime });
          for (const day of [
            '2026-03-07',
            '2026-03-08',
            '2026-03-28',
            '2026-03-29',
            '2026-10-24',
            '2026-10-25',
            '2026-10-31',
            '2026-11-01',
          ]) {
            const noon = defaultShutdownOn(at(`${day}T12:00:00Z`), p);
            assert.ok(noon, `${zone} ${day}`);
            // ask every 15 minutes across the local day that contains UTC noon
            const seen = new Set<string | null>();
            for (let t = noon.getTime() - 26 * 3_600_000; t <= noon.getTime() + 26 * 3_600_000; t += 15 * 60_000) {
              const asked = new Date(t);
              if (!sameLocalDay(asked, at(`${day}T12:00:00Z`), zone)) continue;
              seen.add(iso(defaultShutdownOn(asked, p)));
            }
            assert.deepEqual([...seen], [iso(noon)], `${zone} ${day} ${shutdownTime}`);
          }
        }
      }
    });
  });

  describe('shutdownAfterStart', () => {
    const berlin = { timeZone: 'Europe/Berlin', holidays: ['2026-12-24'] };
    const cases: {
      name: string;
      now: string;
      policy: Partial<EnvironmentPolicy>;
      expected: { shutdownAt: string; afterHours: boolean };
    }[] = [
      {
        name: 'Berlin working-day morning: today 19:00 CET',
        now: '2026-01-15T08:00:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-15T18:00:00.000Z', afterHours: false },
      },
      {
        name: 'Berlin working day, one minute before the shutdown: today 19:00',
        now: '2026-01-15T17:59:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-15T18:00:00.000Z', afterHours: false },
      },
      {
        name: 'Berlin working day, exactly at the shutdown: now + 2h window',
        now: '2026-01-15T18:00:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-15T20:00:00.000Z', afterHours: true },
      },
      {
        name: 'Berlin working day after the shutdown (21:30): now + 2h, not tomorrow 19:00',
        now: '2026-01-15T20:30:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-15T22:30:00.000Z', afterHours: true },
      },
      {
        name: 'Berlin working day 23:30: now + 2h (01:30 the next day), not tomorrow 19:00',
        now: '2026-01-15T22:30:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-16T00:30:00.000Z', afterHours: true },
      },
      {
        name: 'Berlin Friday 22:00: now + 2h, not Monday',
        now: '2026-01-16T21:00:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-16T23:00:00.000Z', afterHours: true },
      },
      {
        name: 'Berlin working-day 03:00 (before the day starts): today 19:00',
        now: '2026-01-16T02:00:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-16T18:00:00.000Z', afterHours: false },
      },
      {
        name: 'Berlin Saturday noon: now + 2h',
        now: '2026-01-17T11:00:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-17T13:00:00.000Z', afterHours: true },
      },
      {
        name: 'Berlin Sunday morning: now + 2h',
        now: '2026-01-18T08:00:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-01-18T10:00:00.000Z', afterHours: true },
      },
      {
        name: 'Berlin holiday morning (Thu 24 Dec): now + 2h',
        now: '2026-12-24T08:00:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-12-24T10:00:00.000Z', afterHours: true },
      },
      {
        name: 'Berlin holiday by local date, UTC still the day before (23:30Z = 00:30 24 Dec): now + 2h',
        now: '2026-12-23T23:30:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-12-24T01:30:00.000Z', afterHours: true },
      },
      {
        name: 'custom window 45m on a Saturday',
        now: '2026-01-17T11:00:00Z',
        policy: { ...berlin, afterHoursWindowMinutes: 45 },
        expected: { shutdownAt: '2026-01-17T11:45:00.000Z', afterHours: true },
      },
      {
        name: 'Sun-Thu: Friday start is after hours',
        now: '2026-01-16T08:00:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: { shutdownAt: '2026-01-16T10:00:00.000Z', afterHours: true },
      },
      {
        name: 'Sun-Thu: Sunday start shuts down at 19:00 IST = 17:00Z',
        now: '2026-01-18T08:00:00Z',
        policy: { timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: { shutdownAt: '2026-01-18T17:00:00.000Z', afterHours: false },
      },
      {
        name: 'Auckland: UTC Friday that is local Saturday 01:00: now + 2h',
        now: '2026-01-16T12:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: { shutdownAt: '2026-01-16T14:00:00.000Z', afterHours: true },
      },
      {
        name: 'Auckland: UTC Sunday that is local Monday 09:00: Monday 19:00 NZDT',
        now: '2026-01-18T20:00:00Z',
        policy: { timeZone: 'Pacific/Auckland' },
        expected: { shutdownAt: '2026-01-19T06:00:00.000Z', afterHours: false },
      },
      {
        name: 'Kolkata: 19:00Z Thu = Fri 00:30 IST: Friday 19:00 IST',
        now: '2026-01-15T19:00:00Z',
        policy: { timeZone: 'Asia/Kolkata' },
        expected: { shutdownAt: '2026-01-16T13:30:00.000Z', afterHours: false },
      },
      // the window is real elapsed time, also across a DST change
      {
        name: 'Berlin Sunday 01:30 CET across spring forward: 2 real hours later is 04:30 CEST',
        now: '2026-03-29T00:30:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-03-29T02:30:00.000Z', afterHours: true },
      },
      {
        name: 'Berlin Sunday 01:30 CEST across fall back: 2 real hours later is 02:30 CET',
        now: '2026-10-24T23:30:00Z',
        policy: berlin,
        expected: { shutdownAt: '2026-10-25T01:30:00.000Z', afterHours: true },
      },
      {
        name: 'New York Sunday 01:00 EDT across fall back: 2 real hours later is 02:00 EST',
        now: '2026-11-01T05:00:00Z',
        policy: { timeZone: 'America/New_York' },
        expected: { shutdownAt: '2026-11-01T07:00:00.000Z', afterHours: true },
      },
      {
        name: 'New York spring-forward day (every day working), 10:00 EDT start: 19:00 EDT',
        now: '2026-03-08T14:00:00Z',
        policy: { timeZone: 'America/New_York', workingDays: EVERY_DAY },
        expected: { shutdownAt: '2026-03-08T23:00:00.000Z', afterHours: false },
      },
      {
        name: 'New York fall-back day (every day working), 01:45 EST start after a 01:30 shutdown: now + 2h',
        now: '2026-11-01T06:45:00Z',
        policy: { timeZone: 'America/New_York', workingDays: EVERY_DAY, shutdownTime: '01:30' },
        expected: { shutdownAt: '2026-11-01T08:45:00.000Z', afterHours: true },
      },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.expected.shutdownAt}${c.expected.afterHours ? ' (after hours)' : ''}`, () => {
        const plan = shutdownAfterStart(at(c.now), policy(c.policy));
        assert.deepEqual({ shutdownAt: plan.shutdownAt.toISOString(), afterHours: plan.afterHours }, c.expected);
      });
    }

    it('never plans a shutdown more than the after-hours window away, except for the rest of a working day', () => {
      const p = policy({ timeZone: 'Europe/Berlin', holidays: ['2026-12-24'] });
      for (let t = at('2026-03-23T00:00:00Z').getTime(); t < at('2026-04-06T00:00:00Z').getTime(); t += 17 * 60_000) {
        const now = new Date(t);
        const plan = shutdownAfterStart(now, p);
        const ahead = plan.shutdownAt.getTime() - t;
        assert.ok(ahead > 0, `${now.toISOString()}: shutdown not in the future`);
        if (plan.afterHours) assert.equal(ahead, 120 * 60_000, now.toISOString());
        else assert.equal(iso(plan.shutdownAt), iso(defaultShutdownOn(now, p)), now.toISOString());
      }
    });
  });

  describe('plannedWarnings', () => {
    const cases: { name: string; shutdownAt: string; policy: Partial<EnvironmentPolicy>; expected: [number, string][] }[] = [
      {
        name: 'default offsets, largest first',
        shutdownAt: '2026-01-15T18:00:00Z',
        policy: {},
        expected: [
          [60, '2026-01-15T17:00:00.000Z'],
          [30, '2026-01-15T17:30:00.000Z'],
          [15, '2026-01-15T17:45:00.000Z'],
        ],
      },
      {
        name: 'unsorted offsets come out largest first',
        shutdownAt: '2026-01-15T18:00:00Z',
        policy: { warningOffsetsMinutes: [15, 120, 5, 30] },
        expected: [
          [120, '2026-01-15T16:00:00.000Z'],
          [30, '2026-01-15T17:30:00.000Z'],
          [15, '2026-01-15T17:45:00.000Z'],
          [5, '2026-01-15T17:55:00.000Z'],
        ],
      },
      {
        name: 'a single offset',
        shutdownAt: '2026-01-15T18:00:00Z',
        policy: { warningOffsetsMinutes: [10] },
        expected: [[10, '2026-01-15T17:50:00.000Z']],
      },
      { name: 'no offsets: no warnings', shutdownAt: '2026-01-15T18:00:00Z', policy: { warningOffsetsMinutes: [] }, expected: [] },
      {
        name: 'warnings cross UTC midnight',
        shutdownAt: '2026-01-16T00:10:00Z',
        policy: {},
        expected: [
          [60, '2026-01-15T23:10:00.000Z'],
          [30, '2026-01-15T23:40:00.000Z'],
          [15, '2026-01-15T23:55:00.000Z'],
        ],
      },
      {
        // shutdown 03:30 CEST (the shifted 02:30); 60 real minutes earlier is 01:30 CET on the wall clock
        name: 'Berlin spring forward: real elapsed minutes, not wall-clock (60m before 03:30 CEST is 01:30 CET)',
        shutdownAt: '2026-03-29T01:30:00Z',
        policy: { timeZone: 'Europe/Berlin', warningOffsetsMinutes: [90, 60, 30] },
        expected: [
          [90, '2026-03-29T00:00:00.000Z'],
          [60, '2026-03-29T00:30:00.000Z'],
          [30, '2026-03-29T01:00:00.000Z'],
        ],
      },
      {
        // shutdown 02:30 EST; 120 real minutes earlier is 01:30 EDT, only one wall-clock hour earlier
        name: 'New York fall back: real elapsed minutes, not wall-clock (120m before 02:30 EST is 01:30 EDT)',
        shutdownAt: '2026-11-01T07:30:00Z',
        policy: { timeZone: 'America/New_York', warningOffsetsMinutes: [120, 60, 15] },
        expected: [
          [120, '2026-11-01T05:30:00.000Z'],
          [60, '2026-11-01T06:30:00.000Z'],
          [15, '2026-11-01T07:15:00.000Z'],
        ],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const warnings = plannedWarnings(at(c.shutdownAt), policy(c.policy));
        assert.deepEqual(
          warnings.map((w) => [w.offsetMinutes, w.at.toISOString()]),
          c.expected,
        );
        for (const w of warnings) assert.equal((at(c.shutdownAt).getTime() - w.at.getTime()) / 60_000, w.offsetMinutes);
      });
    }

    it("does not reorder the policy's own offsets", () => {
      const p = policy({ warningOffsetsMinutes: [15, 60, 30] });
      plannedWarnings(at('2026-01-15T18:00:00Z'), p);
      assert.deepEqual(p.warningOffsetsMinutes, [15, 60, 30]);
    });

    it('warnings of a DST-day shutdown computed from the policy fire in order and before it', () => {
      const p = policy({ timeZone: 'America/New_York', workingDays: EVERY_DAY, shutdownTime: '02:30' });
      const shutdownAt = defaultShutdownOn(at('2026-03-08T15:00:00Z'), p);
      assert.equal(iso(shutdownAt), '2026-03-08T07:30:00.000Z');
      assert.deepEqual(
        plannedWarnings(shutdownAt!, p).map((w) => w.at.toISOString()),
        ['2026-03-08T06:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-08T07:15:00.000Z'],
      );
    });
  });

  describe('nextWakeUp', () => {
    // The first wake-up strictly after `after`: a stop at 19:00, a manual stop after the wake-up, an after-hours window ending at night.
    const cases: { name: string; after: string; policy: Partial<EnvironmentPolicy>; expected: string | null }[] = [
      { name: 'no wake time: never', after: '2026-01-15T07:00:00Z', policy: {}, expected: null },
      {
        name: 'UTC Thursday before the wake-up: today',
        after: '2026-01-15T07:59:00Z',
        policy: { wakeTime: '08:00' },
        expected: '2026-01-15T08:00:00.000Z',
      },
      {
        name: 'at the wake-up itself: the next one (the one due is being taken)',
        after: '2026-01-15T08:00:00Z',
        policy: { wakeTime: '08:00' },
        expected: '2026-01-16T08:00:00.000Z',
      },
      {
        name: 'a manual stop after the wake-up: tomorrow',
        after: '2026-01-15T10:00:00Z',
        policy: { wakeTime: '08:00' },
        expected: '2026-01-16T08:00:00.000Z',
      },
      {
        name: 'an after-hours window ending at 01:00, before the wake-up: the same day',
        after: '2026-01-15T01:00:00Z',
        policy: { wakeTime: '08:00' },
        expected: '2026-01-15T08:00:00.000Z',
      },
      {
        name: "Friday's scheduled stop: Monday, no wake-up Sat or Sun",
        after: '2026-01-16T19:00:00Z',
        policy: { wakeTime: '08:00' },
        expected: '2026-01-19T08:00:00.000Z',
      },
      { name: 'Saturday: Monday', after: '2026-01-17T12:00:00Z', policy: { wakeTime: '08:00' }, expected: '2026-01-19T08:00:00.000Z' },
      {
        name: 'a Monday holiday after the weekend: Tuesday',
        after: '2026-01-16T19:00:00Z',
        policy: { wakeTime: '08:00', holidays: ['2026-01-19'] },
        expected: '2026-01-20T08:00:00.000Z',
      },
      {
        name: 'Christmas Thursday and Friday, then the weekend: Monday 28 December',
        after: '2026-12-23T19:00:00Z',
        policy: { wakeTime: '08:00', holidays: ['2026-12-24', '2026-12-25'] },
        expected: '2026-12-28T08:00:00.000Z',
      },
      {
        name: 'the only working day of the week a holiday: the next week',
        after: '2026-01-20T12:00:00Z',
        policy: { wakeTime: '08:00', workingDays: ['Wed'], holidays: ['2026-01-21'] },
        expected: '2026-01-28T08:00:00.000Z',
      },
      {
        name: 'Berlin spring forward, every day: Saturday 08:00 CET',
        after: '2026-03-27T18:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'Europe/Berlin', workingDays: EVERY_DAY },
        expected: '2026-03-28T07:00:00.000Z',
      },
      {
        name: 'Berlin spring forward, every day: the Sunday of the change 08:00 CEST',
        after: '2026-03-28T18:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'Europe/Berlin', workingDays: EVERY_DAY },
        expected: '2026-03-29T06:00:00.000Z',
      },
      {
        name: 'Berlin spring forward, Mon-Fri: Friday 19:00 CET to Monday 08:00 CEST',
        after: '2026-03-27T18:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'Europe/Berlin' },
        expected: '2026-03-30T06:00:00.000Z',
      },
      {
        name: 'Berlin fall back, every day: Saturday 19:00 CEST to Sunday 08:00 CET',
        after: '2026-10-24T17:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'Europe/Berlin', workingDays: EVERY_DAY },
        expected: '2026-10-25T07:00:00.000Z',
      },
      {
        name: 'Berlin fall back, Mon-Fri: Friday 19:00 CEST to Monday 08:00 CET',
        after: '2026-10-23T17:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'Europe/Berlin' },
        expected: '2026-10-26T07:00:00.000Z',
      },
      {
        name: 'New York spring forward, every day: Saturday 19:00 EST to Sunday 08:00 EDT',
        after: '2026-03-08T00:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'America/New_York', workingDays: EVERY_DAY },
        expected: '2026-03-08T12:00:00.000Z',
      },
      {
        name: 'New York spring forward, Mon-Fri: Friday 19:00 EST to Monday 08:00 EDT',
        after: '2026-03-07T00:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'America/New_York' },
        expected: '2026-03-09T12:00:00.000Z',
      },
      {
        name: 'New York fall back, every day: Saturday 19:00 EDT to Sunday 08:00 EST',
        after: '2026-10-31T23:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'America/New_York', workingDays: EVERY_DAY },
        expected: '2026-11-01T13:00:00.000Z',
      },
      {
        name: 'New York fall back, Mon-Fri: Friday 19:00 EDT to Monday 08:00 EST',
        after: '2026-10-30T23:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'America/New_York' },
        expected: '2026-11-02T13:00:00.000Z',
      },
      {
        name: 'a wake time inside the spring-forward gap moves forward by the gap (02:30 -> 03:30 CEST)',
        after: '2026-03-28T18:00:00Z',
        policy: { wakeTime: '02:30', timeZone: 'Europe/Berlin', workingDays: EVERY_DAY },
        expected: '2026-03-29T01:30:00.000Z',
      },
      {
        name: 'a wake time inside the repeated fall-back hour is its first occurrence (02:30 CEST)',
        after: '2026-10-24T17:00:00Z',
        policy: { wakeTime: '02:30', timeZone: 'Europe/Berlin', workingDays: EVERY_DAY },
        expected: '2026-10-25T00:30:00.000Z',
      },
      {
        name: 'New York Friday night is UTC Saturday: Monday 08:00 EST',
        after: '2026-01-17T04:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'America/New_York' },
        expected: '2026-01-19T13:00:00.000Z',
      },
      {
        name: 'UTC Monday 03:00 is Sunday night in New York: Monday 08:00 EST',
        after: '2026-01-19T03:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'America/New_York' },
        expected: '2026-01-19T13:00:00.000Z',
      },
      {
        name: 'Jerusalem Sun-Thu: Thursday 19:00 to Sunday 08:00 IST',
        after: '2026-01-15T17:00:00Z',
        policy: { wakeTime: '08:00', timeZone: 'Asia/Jerusalem', workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'] },
        expected: '2026-01-18T06:00:00.000Z',
      },
    ];
    for (const c of cases) {
      it(`${c.name}: ${c.expected ?? 'none'}`, () => {
        assert.equal(iso(nextWakeUp(at(c.after), policy(c.policy))), c.expected);
      });
    }
  });

  describe('samePolicy', () => {
    const base = policy({ holidays: ['2026-12-24'] });
    const reordered: EnvironmentPolicy = {
      afterHoursWindowMinutes: 120,
      maxProlongationMinutes: 240,
      warningOffsetsMinutes: [60, 30, 15],
      holidays: ['2026-12-24'],
      workingDays: MON_FRI,
      timeZone: 'UTC',
      shutdownTime: '19:00',
    };
    const { afterHoursWindowMinutes: _, ...withoutAfterHoursWindow } = base;
    const cases: { name: string; other: EnvironmentPolicy; expected: boolean }[] = [
      { name: 'the same policy, another object', other: policy({ holidays: ['2026-12-24'] }), expected: true },
      { name: 'the same fields written in another order (annotations parsed by another version)', other: reordered, expected: true },
      { name: 'another shutdown time', other: { ...base, shutdownTime: '18:00' }, expected: false },
      { name: 'another zone', other: { ...base, timeZone: 'Europe/Berlin' }, expected: false },
      { name: 'a working day less', other: { ...base, workingDays: ['Mon', 'Tue', 'Wed', 'Thu'] }, expected: false },
      { name: 'the working days in another order', other: { ...base, workingDays: ['Fri', 'Mon', 'Tue', 'Wed', 'Thu'] }, expected: false },
      { name: 'no holidays', other: { ...base, holidays: [] }, expected: false },
      { name: 'warnings in another order', other: { ...base, warningOffsetsMinutes: [15, 30, 60] }, expected: false },
      { name: 'another prolongation limit', other: { ...base, maxProlongationMinutes: 60 }, expected: false },
      { name: 'a wake time added (the annotation set)', other: { ...base, wakeTime: '08:00' }, expected: false },
      {
        name: 'a field missing (a policy recorded before it existed)',
        other: withoutAfterHoursWindow as EnvironmentPolicy,
        expected: false,
      },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.expected}`, () => {
        assert.equal(samePolicy(base, c.other), c.expected);
        assert.equal(samePolicy(c.other, base), c.expected, 'either way round');
      });
    }
  });
});

const dayFormats = new Map<string, Intl.DateTimeFormat>();
function sameLocalDay(a: Date, b: Date, zone: string): boolean {
  let format = dayFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormats.set(zone, format);
  }
  return format.format(a) === format.format(b);
}
