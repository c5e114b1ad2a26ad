/** Text a person might type after `/devenv`, for property tests: the table's own words, numbers, sizes and noise, mixed. */
import fc from 'fast-check';

const WORDS = [
  'start',
  'stop',
  'status',
  'list',
  'prolongate',
  'for',
  'support',
  'help',
  'dev1',
  'XL',
  '2h30m',
  '-3h',
  '0m',
  '1000h',
  'Ω',
  '',
];

/** `bounded`: short strings and few words, for a property that costs a round trip per case. */
export function commandText(bounded = false): fc.Arbitrary<string> {
  const limit = (maxLength: number) => (bounded ? { maxLength } : {});
  const words = fc.constantFrom(...WORDS);
  return fc.oneof(
    fc.string(limit(200)),
    fc.string({ unit: 'binary', ...limit(100) }),
    fc.array(words, limit(6)).map((w) => w.join(' ')),
    fc.array(fc.oneof(words, fc.string(limit(20))), limit(6)).map((w) => w.join(' ')),
  );
}
