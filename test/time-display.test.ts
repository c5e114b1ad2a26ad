/**
 * Table-driven tests for how instants read to a person. Zone names are what Intl gives in
 * English (see zoneAbbreviation in src/domain/time-display.ts); offsets as in
 * test/shutdown-policy.test.ts.
 */
import { strict as assert } from 'node:assert';
import { describeClockTime, describeInstant, describeInstantFixed, describeRemaining } from '../src/domain/time-display';

const at = (iso: string): Date => {
  const date = new Date(iso);
  assert.ok(!Number.isNaN(date.getTime()), `bad test instant ${iso}`);
  return date;
};

describe('time-display', () => {
  describe('describeInstant', () => {
    // Zone names are what Intl gives in en-US (luxon formats in en-US unless told otherwise):
    // Zones with an English abbreviation get it (CET/CEST, EST/EDT, IST, NZDT); others a GMT offset.
    const cases: { name: string; instant: string; now: string; zone: string; expected: string }[] = [
      {
        name: 'Berlin winter, later today',
        instant: '2026-01-15T18:00:00Z',
        now: '2026-01-15T08:00:00Z',
        zone: 'Europe/Berlin',
        expected: 'today 19:00 CET',
      },
      {
        name: 'Berlin summer, later today',
        instant: '2026-07-15T17:00:00Z',
        now: '2026-07-15T08:00:00Z',
        zone: 'Europe/Berlin',
        expected: 'today 19:00 CEST',
      },
      {
        name: 'Berlin, tomorrow morning',
        instant: '2026-01-16T08:00:00Z',
        now: '2026-01-15T20:00:00Z',
        zone: 'Europe/Berlin',
        expected: 'tomorrow 09:00 CET',
      },
      {
        name: 'Berlin, two days ahead: weekday format',
        instant: '2026-01-17T20:00:00Z',
        now: '2026-01-15T12:00:00Z',
        zone: 'Europe/Berlin',
        expected: 'Sat 17 Jan 21:00 CET',
      },
      {
        name: 'Berlin, yesterday: weekday format',
        instant: '2026-01-14T18:00:00Z',
        now: '2026-01-15T12:00:00Z',
        zone: 'Europe/Berlin',
        expected: 'Wed 14 Jan 19:00 CET',
      },
      {
        name: 'Berlin 23:30 -> 00:30: tomorrow (local midnight, not UTC midnight)',
        instant: '2026-01-15T23:30:00Z',
        now: '2026-01-15T22:30:00Z',
        zone: 'Europe/Berlin',
        expected: 'tomorrow 00:30 CET',
      },
      {
        name: 'Berlin fall-back day (25 h): 00:30 CEST -> 23:30 CET is still today',
        instant: '2026-10-25T22:30:00Z',
        now: '2026-10-24T22:30:00Z',
        zone: 'Europe/Berlin',
        expected: 'today 23:30 CET',
      },
      {
        name: 'Berlin fall-back day: 00:30 CET the next day is tomorrow',
        instant: '2026-10-25T23:30:00Z',
        now: '2026-10-24T22:30:00Z',
        zone: 'Europe/Berlin',
        expected: 'tomorrow 00:30 CET',
      },
      {
        name: 'Berlin spring-forward day (23 h): 00:30 CET -> 23:30 CEST is still today',
        instant: '2026-03-29T21:30:00Z',
        now: '2026-03-28T23:30:00Z',
        zone: 'Europe/Berlin',
        expected: 'today 23:30 CEST',
      },
      {
        name: 'New York, today though the UTC date is tomorrow',
        instant: '2026-01-16T00:00:00Z',
        now: '2026-01-15T15:00:00Z',
        zone: 'America/New_York',
        expected: 'today 19:00 EST',
      },
      {
        name: 'New York, tomorrow across spring forward (EST now, EDT then)',
        instant: '2026-03-08T23:00:00Z',
        now: '2026-03-07T15:00:00Z',
        zone: 'America/New_York',
        expected: 'tomorrow 19:00 EDT',
      },
      {
        name: 'New York, first 01:30 on fall-back day',
        instant: '2026-11-01T05:30:00Z',
        now: '2026-11-01T04:00:00Z',
        zone: 'America/New_York',
        expected: 'today 01:30 EDT',
      },
      {
        name: 'New York, second 01:30 on fall-back day',
        instant: '2026-11-01T06:30:00Z',
        now: '2026-11-01T04:00:00Z',
        zone: 'America/New_York',
        expected: 'today 01:30 EST',
      },
      {
        name: 'New York, a week ahead: weekday format',
        instant: '2026-01-22T14:30:00Z',
        now: '2026-01-15T15:00:00Z',
        zone: 'America/New_York',
        expected: 'Thu 22 Jan 09:30 EST',
      },
      {
        name: 'Kolkata: UTC says Thursday, local says Friday today',
        instant: '2026-01-16T13:30:00Z',
        now: '2026-01-15T19:00:00Z',
        zone: 'Asia/Kolkata',
        expected: 'today 19:00 IST',
      },
      {
        name: 'Auckland: same UTC date but tomorrow locally',
        instant: '2026-01-15T20:00:00Z',
        now: '2026-01-15T08:00:00Z',
        zone: 'Pacific/Auckland',
        expected: 'tomorrow 09:00 NZDT',
      },
      {
        name: 'Tokyo has no English abbreviation: the offset',
        instant: '2026-01-15T10:00:00Z',
        now: '2026-01-15T01:00:00Z',
        zone: 'Asia/Tokyo',
        expected: 'today 19:00 GMT+9',
      },
      {
        name: 'Auckland: next UTC date but today locally',
        instant: '2026-01-16T06:00:00Z',
        now: '2026-01-15T12:00:00Z',
        zone: 'Pacific/Auckland',
        expected: 'today 19:00 NZDT',
      },
      { name: 'UTC, today', instant: '2026-01-15T19:00:00Z', now: '2026-01-15T08:00:00Z', zone: 'UTC', expected: 'today 19:00 UTC' },
      {
        name: 'UTC, same instant as now',
        instant: '2026-01-15T08:00:00Z',
        now: '2026-01-15T08:00:00Z',
        zone: 'UTC',
        expected: 'today 08:00 UTC',
      },
      {
        name: 'UTC, new month',
        instant: '2026-02-03T19:00:00Z',
        now: '2026-01-30T08:00:00Z',
        zone: 'UTC',
        expected: 'Tue 3 Feb 19:00 UTC',
      },
      {
        name: 'Berlin, New Year: 00:30 on 1 January is tomorrow on 31 December',
        instant: '2026-12-31T23:30:00Z',
        now: '2026-12-31T20:00:00Z',
        zone: 'Europe/Berlin',
        expected: 'tomorrow 00:30 CET',
      },
    ];
    for (const c of cases) {
      it(`${c.name}: "${c.expected}"`, () => {
        assert.equal(describeInstant(at(c.instant), at(c.now), c.zone), c.expected);
      });
    }
  });

  describe('describeInstantFixed (the Temporal UI details: nothing relative to go stale)', () => {
    const cases: { instant: string; zone: string; expected: string }[] = [
      { instant: '2026-01-15T18:00:00Z', zone: 'Europe/Berlin', expected: '2026-01-15 19:00 Europe/Berlin' },
      { instant: '2026-07-15T17:00:00Z', zone: 'Europe/Berlin', expected: '2026-07-15 19:00 Europe/Berlin' },
      { instant: '2026-01-16T00:00:00Z', zone: 'America/New_York', expected: '2026-01-15 19:00 America/New_York' },
      { instant: '2026-01-15T20:00:00Z', zone: 'Pacific/Auckland', expected: '2026-01-16 09:00 Pacific/Auckland' },
    ];
    for (const c of cases) {
      it(`${c.instant} in ${c.zone}: "${c.expected}"`, () => {
        assert.equal(describeInstantFixed(at(c.instant), c.zone), c.expected);
      });
    }
  });

  describe('describeClockTime (a wake-up as announced)', () => {
    const cases: [iso: string, zone: string, expected: string][] = [
      ['2026-12-08T07:00:00Z', 'Europe/Berlin', '08:00 CET'],
      ['2026-03-29T06:00:00Z', 'Europe/Berlin', '08:00 CEST'],
      ['2026-03-08T12:00:00Z', 'America/New_York', '08:00 EDT'],
      ['2026-11-02T13:00:00Z', 'America/New_York', '08:00 EST'],
      ['2026-01-15T08:00:00Z', 'UTC', '08:00 UTC'],
    ];
    for (const [iso, zone, expected] of cases) {
      it(`${iso} in ${zone}: "${expected}"`, () => assert.equal(describeClockTime(new Date(iso), zone), expected));
    }
  });

  describe('describeRemaining', () => {
    const cases: { name: string; from: string; to: string; expected: string }[] = [
      { name: 'zero', from: '2026-01-15T18:00:00Z', to: '2026-01-15T18:00:00Z', expected: '0m' },
      { name: 'in the past clamps to 0m', from: '2026-01-15T18:00:00Z', to: '2026-01-15T17:00:00Z', expected: '0m' },
      { name: '29 seconds rounds down', from: '2026-01-15T18:00:00Z', to: '2026-01-15T18:00:29Z', expected: '0m' },
      { name: '30 seconds rounds up', from: '2026-01-15T18:00:00Z', to: '2026-01-15T18:00:30Z', expected: '1m' },
      { name: '45 minutes', from: '2026-01-15T18:00:00Z', to: '2026-01-15T18:45:00Z', expected: '45m' },
      { name: '59 minutes', from: '2026-01-15T18:00:00Z', to: '2026-01-15T18:59:00Z', expected: '59m' },
      { name: '59m30s rounds to a full hour', from: '2026-01-15T18:00:00Z', to: '2026-01-15T18:59:30Z', expected: '1h 0m' },
      { name: 'one hour', from: '2026-01-15T18:00:00Z', to: '2026-01-15T19:00:00Z', expected: '1h 0m' },
      { name: '2h 10m', from: '2026-01-15T16:50:00Z', to: '2026-01-15T19:00:00Z', expected: '2h 10m' },
      { name: 'over a day stays in hours', from: '2026-01-15T18:00:00Z', to: '2026-01-16T19:05:00Z', expected: '25h 5m' },
      {
        name: 'across Berlin spring forward counts real time (01:30 CET -> 03:30 CEST)',
        from: '2026-03-29T00:30:00Z',
        to: '2026-03-29T01:30:00Z',
        expected: '1h 0m',
      },
      {
        name: 'across New York fall back counts real time (01:30 EDT -> 01:30 EST)',
        from: '2026-11-01T05:30:00Z',
        to: '2026-11-01T06:30:00Z',
        expected: '1h 0m',
      },
    ];
    for (const c of cases) {
      it(`${c.name}: "${c.expected}"`, () => {
        assert.equal(describeRemaining(at(c.from), at(c.to)), c.expected);
      });
    }
  });
});
