import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WatchStreamError } from '../../../src/registry/kubernetes/client/errors.ts';
import {
  watchEvents,
  type WatchItem,
} from '../../../src/registry/kubernetes/client/watch-events.ts';

async function* chunks(parts: (string | Buffer)[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield typeof p === 'string' ? Buffer.from(p) : p;
  await Promise.resolve();
}

async function collect(parts: (string | Buffer)[], max = 1024): Promise<WatchItem[]> {
  const out: WatchItem[] = [];
  for await (const item of watchEvents(chunks(parts), max)) out.push(item);
  return out;
}

const event = (type: string, name: string): string =>
  JSON.stringify({ type, object: { metadata: { name, resourceVersion: '7' } } });

const summary = (items: WatchItem[]): string[] =>
  items.map((i) =>
    i.ok
      ? `${i.event.type} ${(i.event.object.metadata as { name: string }).name}`
      : `error: ${i.error.message}`,
  );

describe('watch stream parsing', () => {
  it('splits events however the bytes are chunked, including a multi-byte character across chunks', async () => {
    const text = `${event('ADDED', 'a')}\n${event('MODIFIED', 'ü')}\n${event('DELETED', 'c')}\n`;
    const bytes = Buffer.from(text);
    const oneByOne = Array.from(bytes, (b) => Buffer.from([b]));
    for (const parts of [[text], oneByOne, [bytes.subarray(0, 50), bytes.subarray(50)]]) {
      assert.deepEqual(summary(await collect(parts)), ['ADDED a', 'MODIFIED ü', 'DELETED c']);
    }
  });

  it('reports a malformed line and a line that is not an event, and goes on with the next', async () => {
    const items = await collect([
      `${event('ADDED', 'a')}\n{"type":"ADDED","obj\n`,
      `{"type":"NOPE","object":{}}\n\n${event('BOOKMARK', 'b')}\n`,
    ]);
    assert.equal(items.length, 4);
    assert.deepEqual(summary(items)[0], 'ADDED a');
    assert.ok(!items[1]?.ok && items[1]?.error instanceof WatchStreamError);
    assert.match(summary(items)[1] ?? '', /not valid JSON/);
    assert.match(summary(items)[2] ?? '', /not a \{type, object\} event/);
    assert.deepEqual(summary(items)[3], 'BOOKMARK b');
  });

  it('skips an event larger than the cap without buffering it, and reads the one after', async () => {
    const big = JSON.stringify({ type: 'ADDED', object: { data: 'x'.repeat(5000) } });
    const parts = [
      event('ADDED', 'a'),
      '\n',
      ...(big.match(/.{1,100}/g) ?? []),
      '\n',
      event('ADDED', 'z'),
      '\n',
    ];
    const items = await collect(parts, 1024);
    assert.deepEqual(summary(items), [
      'ADDED a',
      'error: watch event larger than 1024 bytes skipped',
      'ADDED z',
    ]);
  });

  it('drops a partial last line (the connection broke mid-event)', async () => {
    const items = await collect([`${event('ADDED', 'a')}\n{"type":"ADD`]);
    assert.deepEqual(summary(items), ['ADDED a']);
  });
});
