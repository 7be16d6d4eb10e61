// Attacks on the embedded registry's state directory, through the real CLI
// and agent processes: a wrong --state-dir, stray entries planted in the
// registry, a read-only, full or broken state directory, and 100 KB values
// on the command line.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { eventually, writeDevicesFile } from '../harness/devices.ts';
import { scratchDir } from '../harness/workdir.ts';

const exec = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; a process that hangs (a FIFO read) is killed and fails the test by its exit status. */
async function edgebridge(...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], {
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number | string; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout, stderr: e.stderr };
  }
}

const mounts: string[] = [];
async function mount(...args: string[]): Promise<void> {
  await exec('mount', args);
  mounts.push(args[args.length - 1] ?? '');
}
after(async () => {
  for (const m of mounts.reverse()) await exec('umount', ['-l', m]).catch(() => undefined);
});

function discoveryConfig(file: string, devicesFile: string, name = 'lab'): void {
  writeFileSync(
    file,
    [
      'apiVersion: edgebridge.io/v1alpha1',
      'kind: Discovery',
      `metadata: { name: ${name}, namespace: default }`,
      'spec:',
      `  handler: { name: simulated, details: { file: ${JSON.stringify(devicesFile)} } }`,
      '  intervalSeconds: 1',
      '',
    ].join('\n'),
  );
}

/** The agent's log lines whose err mentions `text`. */
function errorsMentioning(agent: AgentProcess, text: string): string[] {
  return agent
    .logLines()
    .map((l) => (typeof l.err === 'string' ? l.err : JSON.stringify(l.err ?? '')))
    .filter((e) => e.includes(text));
}

describe('edgebridge devices/discoveries on a directory that is not a state directory', () => {
  it('says what is wrong in one line and exits 1, for a missing directory, a foreign one, an empty one and a file', async () => {
    const dir = scratchDir('not-state');
    const foreign = path.join(dir, 'etc');
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    const file = path.join(dir, 'file');
    writeFileSync(file, 'x');
    const cases: [string, RegExp][] = [
      [path.join(dir, 'missing'), /state directory \S+missing does not exist/],
      [foreign, /\S+etc is not an edgebridge state directory/],
      [empty, /\S+empty is not an edgebridge state directory/],
      [file, /\S+file is not a directory/],
    ];
    for (const command of ['devices', 'discoveries']) {
      for (const [stateDir, message] of cases) {
        const r = await edgebridge(command, '--standalone', '--state-dir', stateDir);
        assert.equal(r.code, 1, `${command} ${stateDir}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.doesNotMatch(r.stderr, /No resources found/);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /--state-dir/);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      }
    }
  });
});

describe('stray entries planted in the registry', () => {
  const agents: AgentProcess[] = [];
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
  });

  it('are skipped with one warning each: a directory, a FIFO, a symlink to /dev/zero and an oversized file named *.json', async () => {
    const dir = scratchDir('stray');
    const stateDir = path.join(dir, 'state');
    const devicesFile = path.join(dir, 'devices.yaml');
    const config = path.join(dir, 'edgebridge.yaml');
    writeDevicesFile(devicesFile, [{ id: 'sensor-1' }]);
    discoveryConfig(config, devicesFile);
    // Planted before the agent starts, in both the Device and the Discovery records.
    const planted: string[] = [];
    for (const kind of ['devices', 'discoveries']) {
      const ns = path.join(stateDir, 'registry', kind, 'default');
      mkdirSync(path.join(ns, 'stray-dir.json'), { recursive: true });
      await exec('mkfifo', [path.join(ns, 'stray-fifo.json')]);
      symlinkSync('/dev/zero', path.join(ns, 'stray-zero.json'));
      writeFileSync(path.join(ns, 'stray-big.json'), Buffer.alloc(3 * 1024 * 1024, 0x20));
      planted.push(...['dir', 'fifo', 'zero', 'big'].map((s) => path.join(ns, `stray-${s}.json`)));
    }

    const agent = await startAgent({
      node: 'edge-1',
      registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
    });
    agents.push(agent);
    // The agent's collection and its own listing go past them.
    await eventually('the device in the registry', async () => {
      const r = await edgebridge('devices', '--standalone', '--state-dir', stateDir, '-o', 'json');
      const items = (JSON.parse(r.stdout) as { items: unknown[] }).items;
      return items.length === 1 ? true : undefined;
    });

    const r = await edgebridge('devices', '--standalone', '--state-dir', stateDir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^lab-[0-9a-f]{10}\s+simulated\s+true\s+edge-1/m);
    const warnings = r.stderr.trimEnd().split('\n');
    assert.equal(warnings.length, 4, r.stderr);
    for (const p of planted.slice(0, 4)) {
      assert.equal(warnings.filter((w) => w.includes(JSON.stringify(p))).length, 1, p);
    }

    const d = await edgebridge('discoveries', '--standalone', '--state-dir', stateDir);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /^lab\s+simulated/m);
    // The agent's collection removed the stray records it could (files of no Discovery); what
    // is left is warned about once each.
    const left = d.stderr.trimEnd().split('\n');
    assert.ok(left.length >= 1 && left.length <= 4, d.stderr);
    for (const w of left)
      assert.ok(
        planted.slice(4).some((p) => w.includes(JSON.stringify(p))),
        w,
      );
  });
});

describe('an unusable state directory under the agent', () => {
  const agents: AgentProcess[] = [];
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
  });

  async function agentOn(stateDir: string, dir: string): Promise<AgentProcess> {
    const devicesFile = path.join(dir, 'devices.yaml');
    const config = path.join(dir, 'edgebridge.yaml');
    writeDevicesFile(devicesFile, [{ id: 'sensor-1' }]);
    discoveryConfig(config, devicesFile);
    const agent = await startAgent({
      node: 'edge-1',
      registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
      // Not ready while it cannot read its Discoveries into the registry.
      waitReady: false,
    });
    agents.push(agent);
    return agent;
  }

  it('is reported as read-only (a read-only tmpfs, and a directory not yet made on it), never as ENOENT', async () => {
    const dir = scratchDir('ro-state');
    const ro = path.join(dir, 'ro');
    mkdirSync(ro);
    await mount('-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro);
    for (const stateDir of [ro, path.join(ro, 'not', 'yet')]) {
      const agent = await agentOn(stateDir, scratchDir('ro-agent'));
      const said = await eventually('the agent to say the state directory is read-only', () =>
        Promise.resolve(errorsMentioning(agent, 'read-only file system')[0]),
      );
      assert.ok(said.includes(`state directory ${stateDir} `), said);
      assert.match(said, /mount it read-write or give --state-dir another directory/);
      assert.deepEqual(errorsMentioning(agent, 'ENOENT'), []);
      // It is still alive and serving.
      assert.equal((await agent.get('/healthz')).status, 200);
      await agent.stop();
    }
  });

  it('is reported as read-only when an existing state directory is bind-mounted read-only', async () => {
    const dir = scratchDir('ro-bind');
    const stateDir = path.join(dir, 'state');
    mkdirSync(path.join(stateDir, 'registry', 'devices'), { recursive: true });
    await mount('--bind', stateDir, stateDir);
    await exec('mount', ['-o', 'remount,bind,ro', stateDir]);
    const agent = await agentOn(stateDir, dir);
    const said = await eventually('the agent to say the state directory is read-only', () =>
      Promise.resolve(errorsMentioning(agent, 'read-only file system')[0]),
    );
    assert.ok(said.includes(stateDir), said);
  });

  it('names the entry that is not a directory where the registry belongs', async () => {
    const dir = scratchDir('notdir-state');
    const stateDir = path.join(dir, 'state');
    mkdirSync(stateDir);
    writeFileSync(path.join(stateDir, 'registry'), 'not a directory');
    const agent = await agentOn(stateDir, dir);
    const said = await eventually('the agent to name the file in the way', () =>
      Promise.resolve(errorsMentioning(agent, 'is not a directory')[0]),
    );
    assert.ok(said.includes(`${path.join(stateDir, 'registry')} is not a directory`), said);
    assert.deepEqual(errorsMentioning(agent, 'EEXIST'), []);
  });

  it('says the state directory is full when a device cannot be written for want of space', async () => {
    const dir = scratchDir('full-state');
    const stateDir = path.join(dir, 'state');
    mkdirSync(stateDir);
    await mount('-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', stateDir);
    const agent = await agentOn(stateDir, dir);
    await eventually('sensor-1 registered', async () => {
      const r = await edgebridge('devices', '--standalone', '--state-dir', stateDir, '-o', 'json');
      return (JSON.parse(r.stdout) as { items: unknown[] }).items.length === 1 ? true : undefined;
    });
    await exec('sh', [
      '-c',
      `dd if=/dev/zero of=${path.join(stateDir, 'fill')} bs=4k 2>/dev/null; true`,
    ]);
    writeDevicesFile(path.join(dir, 'devices.yaml'), [{ id: 'sensor-1' }, { id: 'sensor-2' }]);
    const said = await eventually('the agent to say the state directory is full', () =>
      Promise.resolve(errorsMentioning(agent, 'has no space left')[0]),
    );
    assert.ok(said.includes(`state directory ${stateDir} `), said);
    assert.match(said, /free space on its file system/);
  });
});

describe('100 KB values on the command line', () => {
  it('are not echoed back whole in any error', async () => {
    const dir = scratchDir('echo');
    mkdirSync(path.join(dir, 'registry'));
    const huge = 'a'.repeat(100 * 1024);
    const base = ['--standalone', '--state-dir', dir];
    const cases: string[][] = [
      ['devices', ...base, '-l', `${huge}=x`],
      ['devices', ...base, '-l', `x=${huge}`],
      ['devices', ...base, '-l', `x in (a ${huge})`],
      ['devices', ...base, '-l', `x,${huge}`],
      ['devices', ...base, '-n', huge],
      ['devices', ...base, '-o', huge],
      ['devices', ...base, '--handler', huge],
      ['devices', ...base, '--discovery', huge],
      ['devices', ...base, `--${huge}`],
      ['discoveries', ...base, '-l', `${huge}!=`],
      ['discoveries', ...base, '-n', huge],
      ['discoveries', ...base, '-o', huge],
      [huge],
      ['version', '-o', huge],
      ['agent', '--node', huge],
    ];
    for (const args of cases) {
      const r = await edgebridge(...args);
      assert.notEqual(r.code, 0);
      const first = r.stderr.split('\n')[0] ?? '';
      assert.ok(first.length < 600, `${args.join(' ').slice(0, 80)}: ${first.length} characters`);
      assert.ok(r.stderr.length < 4096, `${args.join(' ').slice(0, 80)}: ${r.stderr.length}`);
      assert.match(first, /a{20}…/);
    }
  });
});
