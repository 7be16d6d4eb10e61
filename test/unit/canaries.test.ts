import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canary, CANARY_MARKER, findCanaries } from '../harness/canaries.ts';

describe('canary sweep of the run directory', () => {
  it('finds a canary in any *.log below, by file and line, across read chunks', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'canaries-'));
    try {
      mkdirSync(path.join(dir, 'agent-x'));
      const big = path.join(dir, 'agent-x', 'agent-x.log');
      // 70,000 lines of 10 bytes: the marker lands wherever the 64 KiB chunks split.
      const lines = Array.from({ length: 70_000 }, (_, i) => `line ${String(i).padStart(4, '0')}`);
      lines[6553] = `p ${canary('pw')}`;
      lines[69_999] = `tail ${canary('tok')}`;
      writeFileSync(big, lines.join('\n') + '\n');
      writeFileSync(path.join(dir, 'clean.log'), 'nothing here\n');
      writeFileSync(path.join(dir, 'tokens.csv'), `${canary('kube')},admin\n`);
      const hits = await findCanaries(dir);
      assert.deepEqual(hits, [
        { file: big, line: 6554 },
        { file: big, line: 70_000 },
      ]);
      assert.ok(!JSON.stringify(hits).includes(CANARY_MARKER));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
