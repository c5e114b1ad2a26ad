/**
 * The `/devenv` grammar: table-driven cases, the docs generated from the same table, and
 * a property test that no text whatsoever makes the parser throw.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { commandText } from './support/command-text';
import { COMMANDS, commandReferenceMarkdown, grammar, helpLines, parseCommand, type Command } from '../src/commands';
import { dns1123LabelError } from '../src/domain/names';

describe('command parser', function () {
  const accepted: [string, Command][] = [
    ['start dev1', { name: 'start', namespace: 'dev1' }],
    ['  STOP   dev1 ', { name: 'stop', namespace: 'dev1' }],
    ['status dev1', { name: 'status', namespace: 'dev1' }],
    ['status', { name: 'list' }],
    ['list', { name: 'list' }],
    ['prolongate dev1 for 2h', { name: 'prolongate', namespace: 'dev1', minutes: 120 }],
    ['prolongate dev1 for 90m', { name: 'prolongate', namespace: 'dev1', minutes: 90 }],
    ['prolongate dev1 for 2h30m', { name: 'prolongate', namespace: 'dev1', minutes: 150 }],
    ['prolongate dev1 for 1h 15m', { name: 'prolongate', namespace: 'dev1', minutes: 75 }],
    ['prolongate dev1 45m', { name: 'prolongate', namespace: 'dev1', minutes: 45 }],
    ['prolongate dev1 for 1000h', { name: 'prolongate', namespace: 'dev1', minutes: 60_000 }],
    ['support start manage1 XL', { name: 'support start', supportName: 'manage1', size: 'XL' }],
    ['support start manage1 xs', { name: 'support start', supportName: 'manage1', size: 'XS' }],
    ['support stop manage1', { name: 'support stop', supportName: 'manage1' }],
    ['support list', { name: 'support list' }],
    ['help', { name: 'help' }],
    [`start ${'a'.repeat(63)}`, { name: 'start', namespace: 'a'.repeat(63) }],
  ];
  for (const [text, command] of accepted) {
    it(`parses "${text}"`, function () {
      assert.deepEqual(parseCommand(text), { ok: true, command });
    });
  }

  const rejected: [string, RegExp, RegExp][] = [
    // text, error, usage shown
    ['', /no command/, /\/devenv prolongate <namespace> for <duration>/],
    ['start', /<namespace> is missing/, /^\/devenv start <namespace>$/],
    ['start Dev1', /not a valid name/, /start <namespace>/],
    ['start dev_1', /not a valid name/, /start <namespace>/],
    ['start -dev1', /not a valid name/, /start <namespace>/],
    [`start ${'a'.repeat(64)}`, /longer than 63/, /start <namespace>/],
    ['start dev1 dev2', /unexpected "dev2"/, /start <namespace>/],
    ['prolongate dev1 for -3h', /negative/, /prolongate <namespace> for <duration>/],
    ['prolongate dev1 for 0m', /longer than 0 minutes/, /prolongate/],
    ['prolongate dev1 for soon', /not a duration/, /prolongate/],
    ['prolongate dev1', /<duration> is missing/, /prolongate/],
    ['prolongate dev1 for', /<duration> is missing/, /prolongate/],
    ['strat dev1', /did you mean `\/devenv start dev1`\?/, /^\/devenv start <namespace>$/],
    ['prolong dev1 for 1h', /did you mean `\/devenv prolongate dev1 for 1h`\?/, /prolongate <namespace> for <duration>/],
    ['stat dev1', /did you mean `\/devenv status dev1`\?/, /status <namespace>/],
    ['support start manage1 XXL', /not a size; choose one of XS, S, M, L, XL/, /support start <name> <size>/],
    ['support restart manage1', /"support restart" is not a command/, /support stop <name>/],
    ['support', /support needs start, stop or list/, /support list/],
    ['launch the rockets', /"launch" is not a command/, /\/devenv help/],
  ];
  for (const [text, error, usage] of rejected) {
    it(`rejects "${text}" with a usage message`, function () {
      const result = parseCommand(text);
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.match(result.error, error);
      assert.ok(
        result.usage.some((line) => usage.test(line)),
        `usage ${JSON.stringify(result.usage)}`,
      );
    });
  }

  it('takes the support size catalogue from options', function () {
    assert.deepEqual(parseCommand('support start m1 huge', { supportSizes: ['small', 'huge'] }), {
      ok: true,
      command: { name: 'support start', supportName: 'm1', size: 'huge' },
    });
  });

  it('validates DNS-1123 labels', function () {
    for (const good of ['a', 'dev1', 'a-b', '0a', 'a'.repeat(63)]) assert.equal(dns1123LabelError(good), undefined, good);
    for (const bad of ['', 'A', 'a-', '-a', 'a.b', 'a_b', 'ä', 'a'.repeat(64)]) assert.notEqual(dns1123LabelError(bad), undefined, bad);
  });

  it('help lists every command of the table, as typed', function () {
    const help = helpLines();
    assert.equal(help.length, COMMANDS.length);
    for (const spec of COMMANDS) {
      assert.ok(
        help.some((line) => line.startsWith(`/devenv ${grammar(spec)}`)),
        spec.name,
      );
      // Every documented example parses to the command it documents.
      const parsed = parseCommand(spec.example);
      assert.ok(parsed.ok && parsed.command.name === spec.name, spec.example);
    }
  });

  it('docs/slack.md carries the reference generated from the table', function () {
    const docs = readFileSync(require.resolve('../docs/slack.md'), 'utf8');
    assert.ok(docs.includes(commandReferenceMarkdown()), `docs/slack.md is out of date; paste:\n${commandReferenceMarkdown()}`);
  });

  it('any text is a command or a usage message, never a throw', function () {
    const text = commandText();
    fc.assert(
      fc.property(text, (input) => {
        const result = parseCommand(input);
        if (result.ok) {
          assert.ok(COMMANDS.some((spec) => spec.name === result.command.name));
        } else {
          assert.ok(result.error.length > 0);
          assert.ok(result.usage.length > 0 && result.usage.every((line) => line.startsWith('/devenv ')));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
