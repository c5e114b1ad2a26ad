import { strict as assert } from 'node:assert';
import { formatMinutes, parseDuration } from '../src/domain/duration';

describe('duration', () => {
  describe('parseDuration: accepted forms', () => {
    const cases: [text: string, minutes: number][] = [
      ['1h', 60],
      ['90m', 90],
      ['2h30m', 150],
      ['1h 15m', 75],
      ['2 hours', 120],
      ['1 hour', 60],
      ['1hr', 60],
      ['2hrs', 120],
      ['2 hours 30 minutes', 150],
      ['1 hour 1 minute', 61],
      ['1 h 30 m', 90],
      ['45 min', 45],
      ['45mins', 45],
      ['10 minutes', 10],
      ['1m', 1],
      ['1H30M', 90],
      ['2Hours', 120],
      ['  2h  ', 120],
      ['\t90m\n', 90],
      ['0h30m', 30],
      ['2h0m', 120],
      ['01h05m', 65],
      ['1440m', 1440],
      ['25h', 1500],
      ['100m', 100],
    ];
    for (const [text, minutes] of cases) {
      it(`${JSON.stringify(text)} -> ${minutes} minutes`, () => {
        assert.deepEqual(parseDuration(text), { ok: true, minutes });
      });
    }
  });

  describe('parseDuration: rejected input, with a clear reason', () => {
    const negative = (t: string) => `"${t}" is negative; give a positive duration such as 1h, 90m or 2h30m`;
    const notDuration = (t: string) => `"${t}" is not a duration; use forms such as 1h, 90m or 2h30m`;
    const zero = 'the duration must be longer than 0 minutes';
    const cases: [text: string, error: string][] = [
      ['-3h', negative('-3h')],
      ['-90m', negative('-90m')],
      ['-1h30m', negative('-1h30m')],
      [' -3h ', negative('-3h')],
      ['- 1h', negative('- 1h')],
      ['-0m', negative('-0m')],
      ['0m', zero],
      ['0h', zero],
      ['0h0m', zero],
      ['00m', zero],
      ['0 hours', zero],
      ['', notDuration('')],
      ['   ', notDuration('')],
      ['abc', notDuration('abc')],
      ['soon', notDuration('soon')],
      ['30', notDuration('30')],
      ['1h30', notDuration('1h30')],
      ['1.5h', notDuration('1.5h')],
      ['2d', notDuration('2d')],
      ['1 day', notDuration('1 day')],
      ['30s', notDuration('30s')],
      ['h', notDuration('h')],
      ['m', notDuration('m')],
      ['hm', notDuration('hm')],
      ['1m1h', notDuration('1m1h')],
      ['1h1h', notDuration('1h1h')],
      ['+1h', notDuration('+1h')],
      ['1h-30m', notDuration('1h-30m')],
      ['1h and 30m', notDuration('1h and 30m')],
      ['2h30mx', notDuration('2h30mx')],
      ['for 2h', notDuration('for 2h')],
      ['1e2m', notDuration('1e2m')],
      ['０h', notDuration('０h')],
    ];
    for (const [text, error] of cases) {
      it(`${JSON.stringify(text)} -> ${error}`, () => {
        assert.deepEqual(parseDuration(text), { ok: false, error });
      });
    }
  });

  describe('formatMinutes', () => {
    const cases: [minutes: number, text: string][] = [
      [0, '0m'],
      [1, '1m'],
      [45, '45m'],
      [59, '59m'],
      [60, '1h'],
      [61, '1h1m'],
      [90, '1h30m'],
      [150, '2h30m'],
      [240, '4h'],
      [1440, '24h'],
      [1501, '25h1m'],
    ];
    for (const [minutes, text] of cases) {
      it(`${minutes} -> ${JSON.stringify(text)}`, () => assert.equal(formatMinutes(minutes), text));
    }

    it('round-trips through parseDuration for every whole minute up to 48h', () => {
      for (let minutes = 1; minutes <= 48 * 60; minutes++) {
        assert.deepEqual(parseDuration(formatMinutes(minutes)), { ok: true, minutes }, `${minutes} -> ${formatMinutes(minutes)}`);
      }
    });
  });
});
