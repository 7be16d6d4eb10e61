import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Device, Discovery, LabelSelector } from '../../src/api/types.ts';
import {
  DEVICE_FIELDS,
  DISCOVERY_FIELDS,
  SelectorError,
  deviceFields,
  discoveryFields,
  matchLabelSelector,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from '../../src/registry/selectors.ts';

function selects(selector: string, labels: Record<string, string>): boolean {
  return matchesLabels(parseLabelSelector(selector), labels);
}

function rejects(selector: string, reason?: RegExp): void {
  assert.throws(
    () => parseLabelSelector(selector),
    (err: unknown) => {
      assert.ok(err instanceof SelectorError, `expected a SelectorError for ${selector}`);
      assert.equal(err.code, 'EDGEBRIDGE_INVALID_SELECTOR');
      assert.equal(err.selector, selector);
      if (reason !== undefined) assert.match(err.message, reason);
      return true;
    },
  );
}

describe('label selectors', () => {
  it('parse every operator into requirements', () => {
    assert.deepEqual(parseLabelSelector('a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j,k>3,l<-2'), [
      { key: 'a', operator: 'in', values: ['b'] },
      { key: 'c', operator: 'in', values: ['d'] },
      { key: 'e', operator: 'notin', values: ['f'] },
      { key: 'g', operator: 'in', values: ['x', 'y'] },
      { key: 'h', operator: 'notin', values: ['z'] },
      { key: 'i', operator: 'exists' },
      { key: 'j', operator: 'doesnotexist' },
      { key: 'k', operator: 'gt', value: 3 },
      { key: 'l', operator: 'lt', value: -2 },
    ]);
  });

  it('tolerate whitespace anywhere between tokens', () => {
    assert.deepEqual(
      parseLabelSelector('  a = b ,\tc  in  ( x ,  y ) , ! d ,e\n'),
      parseLabelSelector('a=b,c in (x,y),!d,e'),
    );
  });

  it('select everything when empty or blank', () => {
    assert.deepEqual(parseLabelSelector(''), []);
    assert.deepEqual(parseLabelSelector('   '), []);
    assert.equal(selects('', {}), true);
    assert.equal(selects(' ', { a: 'b' }), true);
  });

  it('accept prefixed keys such as edgebridge.io/handler', () => {
    assert.equal(selects('edgebridge.io/handler=usb', { 'edgebridge.io/handler': 'usb' }), true);
    assert.equal(selects('edgebridge.io/handler=usb', { handler: 'usb' }), false);
  });

  it('match = and == only when the label is present and equal', () => {
    assert.equal(selects('a=b', { a: 'b' }), true);
    assert.equal(selects('a==b', { a: 'b' }), true);
    assert.equal(selects('a=b', { a: 'c' }), false);
    assert.equal(selects('a=b', {}), false);
  });

  it('match != and notin when the label is absent, as Kubernetes does', () => {
    assert.equal(selects('a!=b', {}), true);
    assert.equal(selects('a!=b', { a: 'c' }), true);
    assert.equal(selects('a!=b', { a: 'b' }), false);
    assert.equal(selects('a notin (b,c)', {}), true);
    assert.equal(selects('a notin (b,c)', { a: 'c' }), false);
  });

  it('match in, exists and does-not-exist', () => {
    assert.equal(selects('a in (x,y)', { a: 'y' }), true);
    assert.equal(selects('a in (x,y)', { a: 'z' }), false);
    assert.equal(selects('a in (x,y)', {}), false);
    assert.equal(selects('a', { a: '' }), true);
    assert.equal(selects('a', {}), false);
    assert.equal(selects('!a', {}), true);
    assert.equal(selects('!a', { a: 'x' }), false);
  });

  it('match an empty value with a= (the label present and empty)', () => {
    assert.deepEqual(parseLabelSelector('a='), [{ key: 'a', operator: 'in', values: [''] }]);
    assert.equal(selects('a=', { a: '' }), true);
    assert.equal(selects('a=', {}), false);
    assert.equal(selects('a=,b=c', { a: '', b: 'c' }), true);
  });

  it('read a trailing comma or empty parentheses in a set as the empty value, as Kubernetes does', () => {
    assert.deepEqual(parseLabelSelector('a in (x,)'), [
      { key: 'a', operator: 'in', values: ['x', ''] },
    ]);
    assert.deepEqual(parseLabelSelector('a in ()'), [{ key: 'a', operator: 'in', values: [''] }]);
  });

  it('compare integers with > and <, and never match a label that is not an integer', () => {
    assert.equal(selects('rev>3', { rev: '4' }), true);
    assert.equal(selects('rev>3', { rev: '3' }), false);
    assert.equal(selects('rev<3', { rev: '-1' }), true);
    assert.equal(selects('rev>3', { rev: 'x' }), false);
    assert.equal(selects('rev>3', {}), false);
  });

  it('need every requirement to match', () => {
    assert.equal(selects('a=b,c', { a: 'b', c: '' }), true);
    assert.equal(selects('a=b,c', { a: 'b' }), false);
  });

  it('never see inherited properties as labels', () => {
    assert.equal(selects('constructor', {}), false);
    assert.equal(selects('toString', {}), false);
    assert.equal(selects('!hasOwnProperty', {}), true);
    rejects('__proto__=x', /key name/);
    const labels = JSON.parse('{"__proto__":"x"}') as Record<string, string>;
    assert.equal(selects('!proto', labels), true);
  });

  it('treat undefined labels as none', () => {
    assert.equal(matchesLabels(parseLabelSelector('!a'), undefined), true);
    assert.equal(matchesLabels(parseLabelSelector('a'), undefined), false);
  });

  it('reject broken syntax with a SelectorError that says what was found', () => {
    rejects('a in (x', /expected ',' or '\)'/);
    rejects('a in x', /expected '\('/);
    rejects('a in (x y)', /found 'y'/);
    rejects('a notin', /expected '\('/);
    rejects('=b', /expected a label key/);
    rejects('a=b=c', /found '='/);
    rejects('a b', /found 'b' after 'a'/);
    rejects('a=b c', /found 'c'/);
    rejects(',');
    rejects('a,');
    rejects('a,,b');
    rejects('!');
    rejects('!a=b');
    rejects('a!b');
    rejects('(a)');
    rejects('a=)');
    rejects('in=x');
    rejects('a>x', /integer/);
    rejects('a>', /integer/);
    rejects('a>1.5', /integer/);
    rejects('a<99999999999999999999', /integer/);
  });

  it('reject keys and values that are not valid label keys and values', () => {
    rejects('a/b/c=d', /more than one/);
    rejects('/a=b', /prefix/);
    rejects('Example.COM/a=b', /prefix/);
    rejects('-a=b', /key name/);
    rejects('a-=b', /key name/);
    rejects(`${'k'.repeat(64)}=b`, /key name/);
    rejects(`${'p'.repeat(254)}/a=b`, /prefix/);
    rejects('a=-b', /label value/);
    rejects(`a=${'v'.repeat(64)}`, /label value/);
    rejects('a in (ok,b@d)', /label value/);
    rejects('ä=b');
    rejects('a=\u0000');
    rejects('a=b\u0000');
    rejects('a=b;rm -rf /');
    rejects('a="b"');
    assert.doesNotThrow(() => parseLabelSelector(`${'k'.repeat(63)}=${'v'.repeat(63)}`));
    assert.doesNotThrow(() => parseLabelSelector('a.b-c.d/E.f_G-h=I.j_K-l'));
  });

  it('parse a very long selector in linear time', () => {
    const long = Array.from({ length: 20_000 }, (_, i) => `k${i}=v${i}`).join(',');
    const started = process.hrtime.bigint();
    assert.equal(parseLabelSelector(long).length, 20_000);
    rejects('a in (' + 'x,'.repeat(50_000));
    // Generous: only a quadratic parser would come near it.
    assert.ok(process.hrtime.bigint() - started < 5_000_000_000n);
  });
});

describe('field selectors', () => {
  it('parse =, == and != over the supported fields', () => {
    assert.deepEqual(
      parseFieldSelector('spec.handler=onvif,spec.discovery==cams,metadata.name!=x', DEVICE_FIELDS),
      [
        { field: 'spec.handler', operator: '=', value: 'onvif' },
        { field: 'spec.discovery', operator: '=', value: 'cams' },
        { field: 'metadata.name', operator: '!=', value: 'x' },
      ],
    );
  });

  it('tolerate whitespace and empty terms, and select everything when empty', () => {
    assert.deepEqual(parseFieldSelector('', DEVICE_FIELDS), []);
    assert.deepEqual(parseFieldSelector(' spec.handler = usb ,, ', DEVICE_FIELDS), [
      { field: 'spec.handler', operator: '=', value: 'usb' },
    ]);
  });

  it('unescape \\, \\= and \\\\ in values', () => {
    assert.deepEqual(parseFieldSelector('metadata.name=a\\,b\\=c\\\\d', DEVICE_FIELDS), [
      { field: 'metadata.name', operator: '=', value: 'a,b=c\\d' },
    ]);
  });

  it('allow an empty value, which matches a missing field', () => {
    const [r] = parseFieldSelector('spec.handler=', DEVICE_FIELDS);
    assert.deepEqual(r, { field: 'spec.handler', operator: '=', value: '' });
    assert.equal(matchesFields(parseFieldSelector('spec.handler=', DEVICE_FIELDS), {}), true);
  });

  it('reject unsupported fields, naming the supported ones', () => {
    assert.throws(
      () => parseFieldSelector('spec.id=x', DEVICE_FIELDS),
      (err: unknown) =>
        err instanceof SelectorError &&
        err.code === 'EDGEBRIDGE_INVALID_SELECTOR' &&
        /spec\.id.*not supported.*spec\.handler/.test(err.message),
    );
    assert.throws(() => parseFieldSelector('spec.handler=x', DISCOVERY_FIELDS), SelectorError);
    assert.throws(() => parseFieldSelector('status.nodes=x', DEVICE_FIELDS), SelectorError);
  });

  it('reject terms without an operator, bad escapes and label-style operators', () => {
    for (const bad of [
      'spec.handler',
      'spec.handler in (a)',
      'spec.handler\\=x',
      'metadata.name=a\\x',
      'metadata.name=a\\',
      '=x',
      'spec.handler=a,nope',
    ]) {
      assert.throws(() => parseFieldSelector(bad, DEVICE_FIELDS), SelectorError, bad);
    }
  });

  it('match object fields, = needing equality and != inequality', () => {
    const fields = { 'spec.handler': 'usb', 'metadata.name': 'cam' };
    const match = (s: string): boolean =>
      matchesFields(parseFieldSelector(s, DEVICE_FIELDS), fields);
    assert.equal(match('spec.handler=usb'), true);
    assert.equal(match('spec.handler=onvif'), false);
    assert.equal(match('spec.handler!=onvif'), true);
    assert.equal(match('spec.handler=usb,metadata.name!=cam'), false);
  });

  it('read the selectable fields of Devices and Discoveries', () => {
    const device = {
      metadata: { name: 'd1' },
      spec: { handler: 'usb', discovery: 'usb-sticks' },
    } as unknown as Device;
    assert.deepEqual(deviceFields(device), {
      'metadata.name': 'd1',
      'metadata.namespace': 'default',
      'spec.handler': 'usb',
      'spec.discovery': 'usb-sticks',
    });
    const discovery = {
      metadata: { name: 'cams', namespace: 'site' },
      spec: { handler: { name: 'onvif' } },
    } as unknown as Discovery;
    assert.deepEqual(discoveryFields(discovery), {
      'metadata.name': 'cams',
      'metadata.namespace': 'site',
      'spec.handler.name': 'onvif',
    });
  });
});

describe('matchLabelSelector (spec.nodeSelector)', () => {
  const labels = { zone: 'a', 'edgebridge.io/usb': 'true', empty: '' };

  it('selects every node when the selector is absent or empty', () => {
    assert.equal(matchLabelSelector(undefined, labels), true);
    assert.equal(matchLabelSelector({}, {}), true);
    assert.equal(matchLabelSelector({ matchLabels: {}, matchExpressions: [] }, undefined), true);
  });

  it('needs every matchLabels entry', () => {
    assert.equal(matchLabelSelector({ matchLabels: { zone: 'a' } }, labels), true);
    assert.equal(matchLabelSelector({ matchLabels: { zone: 'a', x: 'y' } }, labels), false);
    assert.equal(matchLabelSelector({ matchLabels: { empty: '' } }, labels), true);
  });

  it('evaluates In, NotIn, Exists and DoesNotExist together with matchLabels', () => {
    const selector: LabelSelector = {
      matchLabels: { zone: 'a' },
      matchExpressions: [
        { key: 'zone', operator: 'In', values: ['a', 'b'] },
        { key: 'tier', operator: 'NotIn', values: ['cloud'] },
        { key: 'edgebridge.io/usb', operator: 'Exists' },
        { key: 'gpu', operator: 'DoesNotExist' },
      ],
    };
    assert.equal(matchLabelSelector(selector, labels), true);
    assert.equal(matchLabelSelector(selector, { ...labels, gpu: 'x' }), false);
    assert.equal(matchLabelSelector(selector, { ...labels, tier: 'cloud' }), false);
    assert.equal(matchLabelSelector(selector, { ...labels, zone: 'b' }), false);
  });

  it('rejects selectors the API server would reject', () => {
    const bad: unknown[] = [
      { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] },
      { matchExpressions: [{ key: 'a', operator: 'In' }] },
      { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      { matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] },
      { matchExpressions: [{ key: 'a', operator: 'in', values: ['x'] }] },
      { matchExpressions: [{ key: 'a b', operator: 'Exists' }] },
      { matchExpressions: [{ key: 'a', operator: 'In', values: ['no way'] }] },
      { matchExpressions: [{ key: 'a', operator: 'In', values: [1] }] },
      { matchExpressions: [null] },
      { matchExpressions: 'zone=a' },
      { matchLabels: { 'bad key': 'x' } },
      { matchLabels: { a: 'bad value' } },
      { matchLabels: { a: 7 } },
    ];
    for (const selector of bad) {
      assert.throws(
        () => matchLabelSelector(selector as LabelSelector, labels),
        (err: unknown) =>
          err instanceof SelectorError && err.code === 'EDGEBRIDGE_INVALID_SELECTOR',
        JSON.stringify(selector),
      );
    }
  });
});
