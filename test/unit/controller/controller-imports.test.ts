// The controller runs on the slim client: @kubernetes/client-node (hundreds
// of MB with its models and HTTP stack) is for the tests only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';

const COMMAND = path.resolve(import.meta.dirname, '../../../src/cli/command-controller.ts');

// Run in a child process: it records every module the command's import graph resolves.
const PROBE = `
import { registerHooks } from 'node:module';
const seen = new Set();
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); seen.add(r.url); return r; } });
await import(${JSON.stringify(COMMAND)});
process.stdout.write(JSON.stringify([...seen]));
`;

describe('edgebridge controller imports', () => {
  it('load no @kubernetes/client-node', () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    const loaded = JSON.parse(run.stdout) as string[];
    assert.ok(loaded.some((u) => u.endsWith('/src/controller/controller.ts')));
    assert.deepEqual(
      loaded.filter((u) => u.includes('@kubernetes/client-node')),
      [],
    );
  });
});
