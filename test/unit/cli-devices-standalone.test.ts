import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { parse } from 'yaml';
import { deviceName } from '../../src/api/names.ts';
import type { Device, Discovery } from '../../src/api/types.ts';
import { EmbeddedRegistry } from '../../src/registry/embedded/registry.ts';
import { NodeViews } from './node-views.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'src/cli/main.ts');

const CONFIG = `
apiVersion: edgebridge.io/v1alpha1
kind: Discovery
metadata: {name: cams}
spec: {handler: {name: simulated}}
---
apiVersion: edgebridge.io/v1alpha1
kind: Discovery
metadata: {name: sticks, namespace: lab, labels: {kind: usb}}
spec: {handler: {name: simulated}}
`;

let dir: string;
let stateDir: string;
let configFile: string;
let registry: EmbeddedRegistry;
const discoveries = new Map<string, Discovery>();

let views: NodeViews;

/** Node `node` sees device `id` of a Discovery (cams: shared; sticks: local). */
async function sees(
  discovery: string,
  id: string,
  node: string,
  labels: Record<string, string> = {},
) {
  const d = discoveries.get(discovery);
  assert.ok(d !== undefined);
  await views.add(
    d,
    node,
    { id, properties: { ID: id }, ...(Object.keys(labels).length > 0 ? { labels } : {}) },
    discovery !== 'sticks',
  );
}

/** Device names as the fold makes them: shared ones by id, local ones by id and node. */
const C1 = deviceName('cams', 'c1', true, '');
const C2 = deviceName('cams', 'c2', true, '');
const S1 = deviceName('sticks', 's1', false, 'node-a');
const CAMS = [C1, C2].sort();

async function edgebridge(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function devices(...args: string[]) {
  return edgebridge('devices', '--standalone', '--state-dir', stateDir, ...args);
}

/** The NAME column (or NAMESPACE/NAME with -A) of a table, header dropped. */
function names(table: string): string[] {
  const [header = '', ...rows] = table.trimEnd().split('\n');
  const namespaced = header.startsWith('NAMESPACE');
  return rows.map((row) => {
    const cells = row.split(/\s{3,}/);
    return namespaced ? `${cells[0] ?? ''}/${cells[1] ?? ''}` : (cells[0] ?? '');
  });
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'edgebridge-cli-'));
  stateDir = path.join(dir, 'state');
  configFile = path.join(dir, 'edgebridge.yaml');
  await writeFile(configFile, CONFIG);
  registry = new EmbeddedRegistry({ stateDir, configFile, log: pino({ level: 'silent' }) });
  for (const d of await registry.listDiscoveries({})) discoveries.set(d.metadata.name, d);
  views = new NodeViews(registry);
  await sees('cams', 'c1', 'node-a');
  await sees('cams', 'c1', 'node-b');
  await sees('cams', 'c2', 'node-b');
  await sees('sticks', 's1', 'node-a', { vendor: '1d6b' });
});

after(async () => {
  await registry.close();
  await rm(dir, { recursive: true, force: true });
});

describe('edgebridge devices --standalone', () => {
  it('prints the default namespace as a table with handler, shared, nodes and age', async () => {
    const { code, stdout, stderr } = await devices();
    assert.equal(code, 0, stderr);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^NAME\s{3,}HANDLER\s{3,}SHARED\s{3}NODES\s{3,}AGE$/);
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? '';
    assert.match(row(C1), /^\S+\s{3,}simulated\s{3,}true\s{3,}node-a,node-b\s{3,}(?:\d+[dhms])+$/);
    assert.match(row(C2), /^\S+\s{3,}simulated\s{3,}true\s{3,}node-b\s{3,}(?:\d+[dhms])+$/);
    assert.deepEqual(names(stdout), CAMS, 'sorted by name');
  });

  it('lists every namespace with -A and one with -n', async () => {
    assert.deepEqual(names((await devices('-A')).stdout), [
      ...CAMS.map((n) => `default/${n}`),
      `lab/${S1}`,
    ]);
    assert.deepEqual(names((await devices('-n', 'lab')).stdout), [S1]);
    assert.deepEqual(names((await devices('--namespace=lab')).stdout), [S1]);
  });

  it('prints a DeviceList with -o json, the same objects the registry holds', async () => {
    const { code, stdout } = await devices('-o', 'json');
    assert.equal(code, 0);
    const list = JSON.parse(stdout) as { apiVersion: string; kind: string; items: Device[] };
    assert.deepEqual(list, {
      apiVersion: 'v1',
      kind: 'DeviceList',
      items: await registry.listDevices({ namespace: 'default' }),
    });
  });

  it('prints the same List as YAML with -o yaml', async () => {
    const { code, stdout } = await devices('-A', '-o', 'yaml');
    assert.equal(code, 0);
    assert.deepEqual(parse(stdout), {
      apiVersion: 'v1',
      kind: 'DeviceList',
      items: await registry.listDevices({}),
    });
  });

  it('adds DISCOVERY, ID, CAPACITY and PROPERTIES with -o wide', async () => {
    const { stdout } = await devices('-n', 'lab', '-o', 'wide');
    const [header, row] = stdout.trimEnd().split('\n');
    assert.match(header ?? '', /AGE\s{3}DISCOVERY\s{3}ID\s{3}CAPACITY\s{3}PROPERTIES$/);
    assert.match(row ?? '', /sticks\s{3,}s1\s{3,}1\s{3,}1$/);
  });

  it('selects by label with -l', async () => {
    const cams = CAMS.map((n) => `default/${n}`);
    assert.deepEqual(names((await devices('-A', '-l', 'vendor=1d6b')).stdout), [`lab/${S1}`]);
    assert.deepEqual(
      names((await devices('-A', '-l', 'edgebridge.io/discovery in (cams)')).stdout),
      cams,
    );
    assert.deepEqual(names((await devices('-A', '-l', '!vendor')).stdout), cams);
  });

  it('filters with --handler and --discovery (field selectors)', async () => {
    const cams = CAMS.map((n) => `default/${n}`);
    assert.deepEqual(names((await devices('-A', '--handler', 'simulated')).stdout), [
      ...cams,
      `lab/${S1}`,
    ]);
    assert.deepEqual(names((await devices('-A', '--discovery', 'cams')).stdout), cams);
    const none = await devices('-A', '--handler', 'simulated', '--discovery', 'nothing');
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');
    assert.equal(none.stderr, 'No resources found\n');
  });

  it('filters on status.nodes with --node', async () => {
    assert.deepEqual(names((await devices('--node', 'node-b')).stdout), CAMS);
    assert.deepEqual(names((await devices('-A', '--node', 'node-a')).stdout), [
      `default/${C1}`,
      `lab/${S1}`,
    ]);
    const json = JSON.parse((await devices('-A', '--node', 'node-c', '-o', 'json')).stdout) as {
      items: unknown[];
    };
    assert.deepEqual(json.items, []);
  });

  it('says so on stderr when nothing is found, and exits 0', async () => {
    const { code, stdout, stderr } = await devices('-n', 'nowhere');
    assert.equal(code, 0);
    assert.equal(stdout, '');
    assert.equal(stderr, 'No resources found in nowhere namespace.\n');
  });

  it('rejects bad usage with exit status 2', async () => {
    const cases = [
      ['-n', 'lab', '-A'],
      ['-l', 'vendor in (1d6b'],
      ['--handler', 'bogus'],
      ['--discovery', 'Not_A_Name'],
      ['-o', 'xml'],
      ['--kubeconfig', '/nope'],
      ['stray-positional'],
      ['--bogus'],
    ];
    const results = await Promise.all(cases.map((args) => devices(...args)));
    for (const [i, { code, stderr }] of results.entries()) {
      assert.equal(code, 2, `${(cases[i] ?? []).join(' ')}: ${stderr}`);
      assert.match(stderr, /^edgebridge: /);
    }
  });

  it('prints the table, then new and changed rows with --watch, until SIGINT', async () => {
    const child = spawn(
      process.execPath,
      [cli, 'devices', '--standalone', '--state-dir', stateDir, '-n', 'lab', '--watch'],
      { cwd: root },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    const waitFor = async (pattern: RegExp): Promise<void> => {
      const deadline = Date.now() + 15_000;
      while (!pattern.test(stdout)) {
        if (Date.now() > deadline) assert.fail(`no ${String(pattern)} in:\n${stdout}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const sticks = discoveries.get('sticks');
    assert.ok(sticks !== undefined);
    const s2 = deviceName('sticks', 's2', false, 'node-b');
    try {
      await waitFor(new RegExp(`^NAME .*\\n${S1} .*\\n$`));
      await sees('sticks', 's2', 'node-b');
      await waitFor(new RegExp(`\\n${s2} +simulated +false +node-b +(?:\\d+[dhms])+\\n$`));
      await sees('sticks', 's1', 'node-a', { vendor: '1d6b', changed: 'yes' });
      await waitFor(new RegExp(`\\n${S1} +simulated +false +node-a +(?:\\d+[dhms])+\\n$`));
      assert.equal(stdout.match(/^NAME /gm)?.length, 1, 'the header is printed once');
      child.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      await views.remove(sticks, 'node-b', 's2');
      await sees('sticks', 's1', 'node-a', { vendor: '1d6b' });
    }
  });
});

describe('edgebridge discoveries --standalone', () => {
  const discoveriesCli = (...args: string[]) =>
    edgebridge(
      'discoveries',
      '--standalone',
      '--state-dir',
      stateDir,
      '--config',
      configFile,
      ...args,
    );

  it('prints NAME, HANDLER, DEVICES and AGE, with status from the state directory', async () => {
    // The count is the store's own fold of the slices (two Devices of cams).
    const { code, stdout } = await discoveriesCli();
    assert.equal(code, 0);
    const [header, row, extra] = stdout.trimEnd().split('\n');
    assert.match(header ?? '', /^NAME\s{3}HANDLER\s{3,}DEVICES\s{3}AGE$/);
    assert.match(row ?? '', /^cams\s{3}simulated\s{3}2\s{9}(?:\d+[dhms])+$/);
    assert.equal(extra, undefined);
  });

  it('lists every namespace with -A, selects with -l, and prints a DiscoveryList', async () => {
    assert.deepEqual(names((await discoveriesCli('-A')).stdout), ['default/cams', 'lab/sticks']);
    assert.deepEqual(names((await discoveriesCli('-A', '-l', 'kind=usb')).stdout), ['lab/sticks']);
    const list = JSON.parse((await discoveriesCli('-A', '-o', 'json')).stdout) as {
      kind: string;
      items: Discovery[];
    };
    assert.equal(list.kind, 'DiscoveryList');
    assert.deepEqual(list.items, await registry.listDiscoveries({}));
    const yaml = parse((await discoveriesCli('-n', 'lab', '-o', 'yaml')).stdout) as {
      items: Discovery[];
    };
    assert.deepEqual(
      yaml.items.map((d) => d.metadata.name),
      ['sticks'],
    );
    assert.match((await discoveriesCli('-o', 'wide')).stdout, /DETAILSVALID/);
  });
});
