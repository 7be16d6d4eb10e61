import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clip, quote } from '../../src/util/quote.ts';
import { parseFieldSelector, parseLabelSelector } from '../../src/registry/selectors.ts';

describe('quote and clip', () => {
  it('keep a short value whole and cut a long one to 64 characters and "…"', () => {
    assert.equal(quote('abc'), '"abc"');
    assert.equal(clip('x'.repeat(64)), 'x'.repeat(64));
    assert.equal(clip('x'.repeat(65)), `${'x'.repeat(64)}…`);
    assert.equal(clip('x'.repeat(100_000), 10), `${'x'.repeat(10)}…`);
  });

  it('count code points, never splitting a surrogate pair', () => {
    assert.equal(clip('😀'.repeat(70), 3), '😀😀😀…');
  });
});

describe('selector errors', () => {
  const huge = 'k'.repeat(100 * 1024);
  const cases: [string, () => unknown][] = [
    ['a long key', () => parseLabelSelector(`${huge}=v`)],
    ['a long value', () => parseLabelSelector(`k=${huge}`)],
    ['a long token after a key', () => parseLabelSelector(`k ${huge}`)],
    ['a long set member', () => parseLabelSelector(`k in (a ${huge})`)],
    ['a long integer', () => parseLabelSelector(`k > ${huge}`)],
    ['a long field', () => parseFieldSelector(`${huge}=x`, ['spec.handler'])],
    ['a long term', () => parseFieldSelector(huge, ['spec.handler'])],
    ['a long bad escape', () => parseFieldSelector(`spec.handler=\\q${huge}`, ['spec.handler'])],
  ];
  for (const [what, parse] of cases) {
    it(`repeat at most a few dozen characters of ${what}`, () => {
      assert.throws(parse, (err: Error) => {
        assert.ok(err.message.length < 400, `${err.message.length} characters`);
        assert.match(err.message, /k{20}…|\.{0}…/);
        return true;
      });
    });
  }
});
