/** The escaping seam of src/slack/blocks.ts on its own: text from outside cannot leave a code span. */
import assert from 'node:assert/strict';
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
