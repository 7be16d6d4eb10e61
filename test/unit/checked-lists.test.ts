import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { checkedLists } from '../../discovery-handlers/checked-lists.ts';
import type { DiscoveredDevice } from '../../discovery-handlers/handler.ts';

async function* from(lists: DiscoveredDevice[][]): AsyncGenerator<DiscoveredDevice[]> {
  for (const list of lists) yield await Promise.resolve(list);
}

async function run(lists: DiscoveredDevice[][]) {
  const lines: { device: string; problem: string; msg: string }[] = [];
  const log = pino(
    { level: 'warn' },
    { write: (l: string) => lines.push(JSON.parse(l) as (typeof lines)[number]) },
  );
  const out: string[][] = [];
  for await (const list of checkedLists(from(lists), log)) out.push(list.map((d) => d.id));
  return { out, lines };
}

const ok = (id: string, extra: Partial<DiscoveredDevice> = {}): DiscoveredDevice => ({
  id,
  properties: { A: '1' },
  ...extra,
});

describe('checkedLists', () => {
  it('drops each bad device with one log line naming it and the field, and keeps the rest', async () => {
    const bad: [DiscoveredDevice, RegExp][] = [
      [ok('ctl\u0007id'), /^device\.id: must be 1-1024 characters without control/],
      [ok('x'.repeat(1025)), /^device\.id: must be at most 1024 characters/],
      [ok('', {}), /^device\.id: must be at least 1 characters/],
      [ok('lower', { properties: { lower: 'v' } }), /^device\.properties: key "lower"/],
      [
        ok('big', { properties: { BIG: 'v'.repeat(4097) } }),
        /^device\.properties\.BIG: must be at most 4096/,
      ],
      [ok('label', { labels: { 'bad key!': 'v' } }), /^device\.labels: key "bad key!"/],
      [
        ok('lv', { labels: { k: 'has space' } }),
        /^device\.labels\.k: must be a Kubernetes label value/,
      ],
      [
        ok('node', { deviceNodes: [{ hostPath: '/dev/../etc/shadow' }] }),
        /^device\.deviceNodes\[0\]\.hostPath: must be an absolute path/,
      ],
      [
        ok('rel', { deviceNodes: [{ hostPath: 'dev/ttyUSB0' }] }),
        /^device\.deviceNodes\[0\]\.hostPath/,
      ],
      [
        { id: 'extra', properties: {}, colour: 'red' } as DiscoveredDevice,
        /^device\.colour: unknown field/,
      ],
      [ok('good'), /^device\.id: listed twice; the first one is kept$/],
    ];
    const list = [ok('good'), ok('My Printer._ipp._tcp.local'), ...bad.map(([d]) => d)];
    const { out, lines } = await run([list]);
    assert.deepEqual(out, [['good', 'My Printer._ipp._tcp.local']]);
    assert.equal(lines.length, bad.length);
    for (const [i, [, problem]] of bad.entries()) {
      assert.match(lines[i]?.problem ?? '', problem);
      assert.equal(lines[i]?.msg, 'handler reported a bad device; dropped');
    }
    assert.ok(lines.every((l) => l.device.length <= 128));
  });

  it('passes on a list only when it changed, and logs a device that stays bad once', async () => {
    const bad = ok('bad', { properties: { lower: 'v' } });
    const { out, lines } = await run([
      [ok('a'), bad],
      [ok('a'), bad],
      [ok('a'), ok('b'), bad],
      [ok('b'), ok('a')],
      [ok('a', { properties: { A: '2' } }), ok('b')],
    ]);
    assert.deepEqual(out, [['a'], ['a', 'b'], ['a', 'b']]);
    assert.equal(lines.length, 1);
  });
});
