import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'src/cli/main.ts');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  version: string;
};

async function edgebridge(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('edgebridge version', () => {
  it('prints the package version and the Node.js it runs on', async () => {
    const { code, stdout } = await edgebridge('version');
    assert.equal(code, 0);
    assert.equal(
      stdout,
      `edgebridge ${pkg.version} (node ${process.version}, ${process.platform}/${process.arch})\n`,
    );
  });

  it('prints JSON with -o json', async () => {
    const { code, stdout } = await edgebridge('version', '-o', 'json');
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), {
      version: pkg.version,
      node: process.version,
      platform: `${process.platform}/${process.arch}`,
    });
  });

  it('rejects an unknown output format with exit status 2', async () => {
    const { code, stderr } = await edgebridge('version', '-o', 'xml');
    assert.equal(code, 2);
    assert.match(stderr, /unknown output format 'xml'/);
  });
});

describe('edgebridge', () => {
  it('rejects an unknown command with the usage and exit status 2', async () => {
    const { code, stderr } = await edgebridge('frobnicate');
    assert.equal(code, 2);
    assert.match(stderr, /unknown command "frobnicate"/);
    assert.match(stderr, /usage: edgebridge <command>/);
  });

  it('rejects an unknown flag with exit status 2', async () => {
    const { code, stderr } = await edgebridge('version', '--bogus');
    assert.equal(code, 2);
    assert.match(stderr, /bogus/);
  });
});
