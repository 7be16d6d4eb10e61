import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HANDLER_NAMES } from '../../src/api/types.ts';

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

async function scan(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'scan', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const details = JSON.stringify({
  devices: [
    { id: 'b', properties: { URL: 'http://10.0.0.2/', TOKEN: 'Bearer s3cret-value' } },
    { id: 'a', labels: { vendor: 'acme' } },
  ],
});

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'edgebridge-scan-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('edgebridge scan', () => {
  it('prints the first complete list as a table and exits 0', async () => {
    const { code, stdout } = await scan('simulated', '--details', details);
    assert.equal(code, 0);
    assert.deepEqual(
      stdout.split('\n').map((l) => l.trimEnd()),
      [
        'ID   PROPERTIES                                       LABELS        DEVICENODES',
        'a    <none>                                           vendor=acme   <none>',
        'b    URL=http://10.0.0.2/,TOKEN=Bearer s3cret-value   <none>        <none>',
        '',
      ],
    );
  });

  it('prints {"items": [...]} with -o json, from --details-file (YAML)', async () => {
    const file = path.join(dir, 'details.yaml');
    await writeFile(file, 'devices:\n  - id: d1\n    properties: {A: "1"}\n');
    const { code, stdout } = await scan('simulated', '--details-file', file, '-o', 'json');
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), {
      items: [{ id: 'd1', properties: { A: '1' }, labels: {}, deviceNodes: [], mounts: [] }],
    });
  });

  it('never prints a value given with --property', async () => {
    const { code, stdout, stderr } = await scan(
      'simulated',
      '--details',
      details,
      '--property',
      'API_TOKEN=s3cret-value',
      '-o',
      'yaml',
    );
    assert.equal(code, 0);
    assert.ok(!stdout.includes('s3cret') && !stderr.includes('s3cret'), stdout + stderr);
    assert.match(stdout, /TOKEN: <redacted>/);
    assert.match(stdout, /URL: http:\/\/10\.0\.0\.2\//);
  });

  it("exits 2 with the handler's message for bad details", async () => {
    const { code, stdout, stderr } = await scan(
      'simulated',
      '--details',
      '{"devices": [{"id": "ok"}, {"id": "x", "properties": {"lower": "v"}}]}',
    );
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.equal(
      stderr,
      'edgebridge: details.devices[1].properties: key "lower" must be an ENV_STYLE name (A-Z, 0-9, _; at most 128) (^[A-Z_][A-Z0-9_]{0,127}$)\n',
    );
  });

  it('exits 1 with the reason when the handler fails, without waiting for the timeout', async () => {
    // An interface that does not exist: nothing is sent anywhere.
    const { code, stdout, stderr } = await scan(
      'mdns',
      '--details',
      '{"interfaces": ["ebnone0"]}',
      '--timeout',
      '3600',
    );
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(
      stderr,
      /interface 'ebnone0' has no IPv4 address on this node \[EDGEBRIDGE_MDNS_INTERFACE\]/,
    );
  });

  it('exits 2 for an unknown handler, unreadable details and bad flags', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['zigbee'],
        new RegExp(`no handler named 'zigbee' \\(known: ${HANDLER_NAMES.join(', ')}\\)`),
      ],
      [[], /scan wants a handler/],
      [['simulated', '--details', '{'], /details are not JSON or YAML/],
      [['simulated', '--details-file', path.join(dir, 'missing')], /--details-file .*ENOENT/],
      [['simulated', '--details', '{}', '--details-file', 'x'], /not both/],
      [['simulated', '--property', 'novalue'], /--property wants NAME=VALUE/],
      [['simulated', '--timeout', '0'], /--timeout wants seconds/],
      [['simulated', '-o', 'wide'], /unknown output format 'wide'/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await scan(...args);
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, message);
    }
  });
});
