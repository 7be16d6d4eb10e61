import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { removeFile, writeFileAtomic } from '../../src/registry/embedded/atomic-file.ts';

function scratch(): string {
  return mkdtempSync(path.join(tmpdir(), 'atomic-file-'));
}

describe('writeFileAtomic and removeFile (directory fsyncs shared by a burst)', () => {
  it('completes every write of a burst in one directory, each file whole, no temp file left', async () => {
    const dir = scratch();
    const names = Array.from({ length: 300 }, (_, i) => `d-${i}.json`);
    await Promise.all(
      names.map((n) => writeFileAtomic(path.join(dir, n), JSON.stringify({ n }) + '\n')),
    );
    assert.deepEqual(readdirSync(dir).sort(), [...names].sort());
    for (const n of names) {
      assert.deepEqual(JSON.parse(readFileSync(path.join(dir, n), 'utf8')), { n });
    }
    // Writes and removals after the burst, one at a time, start fsyncs of their own.
    await writeFileAtomic(path.join(dir, 'late.json'), '{}\n');
    assert.equal(await removeFile(path.join(dir, 'late.json')), true);
    const removed = await Promise.all(
      names.slice(0, 100).map((n) => removeFile(path.join(dir, n))),
    );
    assert.ok(removed.every((r) => r));
    assert.equal(readdirSync(dir).length, 200);
  });

  it('leaves a file written by many writers at once holding exactly one of their contents', async () => {
    const dir = scratch();
    const file = path.join(dir, 'one.json');
    const bodies = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({ writer: i, pad: 'x'.repeat(4096) }),
    );
    await Promise.all(bodies.map((b) => writeFileAtomic(file, b)));
    assert.ok(bodies.includes(readFileSync(file, 'utf8')));
    assert.deepEqual(readdirSync(dir), ['one.json']);
  });

  it('fails a write whose directory cannot be made, and later writes elsewhere still complete', async () => {
    const dir = scratch();
    await writeFileAtomic(path.join(dir, 'file'), 'x');
    await assert.rejects(writeFileAtomic(path.join(dir, 'file', 'below.json'), 'y'));
    await writeFileAtomic(path.join(dir, 'ok.json'), 'z');
    assert.equal(readFileSync(path.join(dir, 'ok.json'), 'utf8'), 'z');
  });
});
