import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { deviceSpecSchema, deviceStatusSchema } from '../../src/api/schema.ts';
import { deviceName } from '../../src/api/names.ts';
import type { Device, Discovery, SliceDevice } from '../../src/api/types.ts';
import { EmbeddedRegistry } from '../../src/registry/embedded/registry.ts';
import { checkSchema } from '../../src/util/schema-check.ts';
import { stableUid } from '../../src/registry/embedded/meta.ts';
import {
  RegistryConflictError,
  RegistryRejectedError,
  RegistryUnavailableError,
} from '../../src/registry/errors.ts';
import { NodeViews } from './node-views.ts';
import { SelectorError } from '../../src/registry/selectors.ts';

/** Replaces a file the way editors and config tools do (write aside, rename), so a watcher never reads it half-written. */
async function replaceFile(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

const CONFIG = `
apiVersion: edgebridge.io/v1alpha1
kind: Discovery
metadata:
  name: cams
  labels: {site: north}
spec:
  handler:
    name: simulated
    details: {timeoutSeconds: 2}
  properties:
    - name: ONVIF_USER
      valueFrom: {secretKeyRef: {name: onvif-creds, key: user}}
    - name: ONVIF_PASSWORD
      valueFrom: {secretKeyRef: {name: onvif-creds, key: password}}
---
apiVersion: edgebridge.io/v1alpha1
kind: Discovery
metadata: {name: sticks, namespace: lab}
spec:
  handler: {name: simulated}
  capacity: 2
  nodeSelector: {matchLabels: {usb: "true"}}
---
apiVersion: v1
kind: Secret
metadata: {name: onvif-creds}
data: {user: YWRtaW4=, password: aWdub3JlZA==}
stringData: {password: s3cret}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: lab}
data: {mode: fast}
binaryData: {blob: aGk=}
`;

interface Captured {
  log: Logger;
  lines: { level: number; msg: string; err?: { message: string; code?: string } }[];
}

function captureLog(): Captured {
  const lines: Captured['lines'] = [];
  const log = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as Captured['lines'][number]) },
  );
  return { log, lines };
}

let base: string;
before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'edgebridge-embedded-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

let dirCount = 0;
/** A case directory with the config file holding `config` (none for null). */
async function fixture(config: string | null = CONFIG) {
  const dir = path.join(base, `case-${++dirCount}`);
  const stateDir = path.join(dir, 'state');
  const configFile = path.join(dir, 'edgebridge.yaml');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  if (config !== null) await writeFile(configFile, config);
  const captured = captureLog();
  const open = (extra: { nodeLabels?: Record<string, string>; lockTimeoutMs?: number } = {}) =>
    new EmbeddedRegistry({
      stateDir,
      configFile,
      log: captured.log,
      pollIntervalMs: 100,
      nodeLabels: extra.nodeLabels,
      lock: { timeoutMs: extra.lockTimeoutMs ?? 10_000 },
    });
  return { dir, stateDir, configFile, ...captured, open };
}

/** The devices a test's nodes see, written as slices through the registry. */
function devicesOf(id: string, extra: Partial<SliceDevice> = {}): SliceDevice {
  return { id, properties: { DEVICE_ID: id }, ...extra };
}

/** The Device name the fold gives a device of `discovery` (sticks are local, cams shared). */
function nameOf(discovery: string, id: string, node = 'node-a'): string {
  return deviceName(discovery, id, discovery !== 'sticks', node);
}

async function discoveriesOf(registry: EmbeddedRegistry): Promise<Map<string, Discovery>> {
  const list = await registry.listDiscoveries({});
  return new Map(list.map((d) => [d.metadata.name, d]));
}

function byName(list: Map<string, Discovery>, name: string): Discovery {
  const d = list.get(name);
  assert.ok(d !== undefined, `discovery ${name}`);
  return d;
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function deviceFile(stateDir: string, namespace: string, name: string): string {
  return path.join(stateDir, 'registry', 'devices', namespace, `${name}.json`);
}

async function readDevice(stateDir: string, namespace: string, name: string): Promise<Device> {
  return JSON.parse(await readFile(deviceFile(stateDir, namespace, name), 'utf8')) as Device;
}

describe('embedded registry: Discoveries from the config file', () => {
  it('lists the Discoveries with namespace defaulted, CRD defaults, a stable uid and generation 1', async () => {
    const f = await fixture();
    const registry = f.open();
    const list = await registry.listDiscoveries({});
    assert.deepEqual(
      list.map((d) => `${d.metadata.namespace}/${d.metadata.name}`),
      ['default/cams', 'lab/sticks'],
    );
    const cams = list[0];
    assert.ok(cams !== undefined);
    assert.equal(cams.apiVersion, 'edgebridge.io/v1alpha1');
    assert.equal(cams.kind, 'Discovery');
    assert.equal(cams.metadata.uid, stableUid('Discovery', 'default', 'cams'));
    assert.match(
      cams.metadata.uid ?? '',
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.equal(cams.metadata.generation, 1);
    assert.match(cams.metadata.creationTimestamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(cams.metadata.labels, { site: 'north' });
    assert.equal(cams.spec.capacity, 1);
    assert.equal(cams.spec.intervalSeconds, 30);
    assert.equal(cams.spec.gracePeriodSeconds, 60);
    assert.deepEqual(cams.spec.handler, { name: 'simulated', details: { timeoutSeconds: 2 } });
    assert.equal(cams.status, undefined);
    await registry.close();
  });

  it('reads Secret (data and stringData) and ConfigMap (data and binaryData) keys', async () => {
    const f = await fixture();
    const registry = f.open();
    const secret = { kind: 'Secret', namespace: 'default', name: 'onvif-creds' } as const;
    assert.equal(await registry.readValue({ ...secret, key: 'user' }), 'admin');
    assert.equal(await registry.readValue({ ...secret, key: 'password' }), 's3cret');
    assert.equal(await registry.readValue({ ...secret, key: 'nope' }), undefined);
    assert.equal(await registry.readValue({ ...secret, namespace: 'lab', key: 'user' }), undefined);
    const cm = { kind: 'ConfigMap', namespace: 'lab', name: 'settings' } as const;
    assert.equal(await registry.readValue({ ...cm, key: 'mode' }), 'fast');
    assert.equal(await registry.readValue({ ...cm, key: 'blob' }), 'hi');
    assert.equal(await registry.readValue({ ...cm, kind: 'Secret', key: 'mode' }), undefined);
    await registry.close();
  });

  it('returns the nodeLabels option as the labels of any node', async () => {
    const f = await fixture();
    const registry = f.open({ nodeLabels: { usb: 'true' } });
    assert.deepEqual(await registry.nodeLabels('node-a'), { usb: 'true' });
    await registry.close();
    const bare = (await fixture()).open();
    assert.deepEqual(await bare.nodeLabels('node-a'), {});
    await bare.close();
  });

  it('bumps the generation when the spec changes, not for labels, and keeps it across a reopen', async () => {
    const f = await fixture();
    let registry = f.open();
    const first = byName(await discoveriesOf(registry), 'cams');
    await replaceFile(f.configFile, CONFIG.replace('timeoutSeconds: 2', 'timeoutSeconds: 5'));
    assert.equal(byName(await discoveriesOf(registry), 'cams').metadata.generation, 2);
    assert.equal(byName(await discoveriesOf(registry), 'sticks').metadata.generation, 1);
    await writeFile(
      f.configFile,
      CONFIG.replace('timeoutSeconds: 2', 'timeoutSeconds: 5').replace(
        'site: north',
        'site: south',
      ),
    );
    const relabelled = byName(await discoveriesOf(registry), 'cams');
    assert.equal(relabelled.metadata.generation, 2);
    assert.deepEqual(relabelled.metadata.labels, { site: 'south' });
    await registry.close();

    registry = f.open();
    const reopened = byName(await discoveriesOf(registry), 'cams');
    assert.equal(reopened.metadata.generation, 2);
    assert.equal(reopened.metadata.uid, first.metadata.uid);
    assert.equal(reopened.metadata.creationTimestamp, first.metadata.creationTimestamp);
    await registry.close();
  });

  it('keeps status.devices and the nodes’ conditions from the fold of the slices, also after a reopen', async () => {
    const f = await fixture();
    let registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    const sticks = byName(await discoveriesOf(registry), 'sticks');
    const views = new NodeViews(registry);
    const count = async (name: string) =>
      byName(await discoveriesOf(registry), name).status?.devices;
    await views.set(cams, 'node-a', [devicesOf('c1'), devicesOf('c2')]);
    await views.set(cams, 'node-b', [devicesOf('c1')]);
    await views.set(sticks, 'node-a', [devicesOf('s1')], false);
    assert.equal(await count('cams'), 2);
    assert.equal(await count('sticks'), 1);
    await views.set(cams, 'node-a', [devicesOf('c1')]);
    assert.equal(await count('cams'), 1);
    const reporting = byName(await discoveriesOf(registry), 'cams').status?.conditions?.find(
      (c) => c.type === 'NodesReporting',
    );
    assert.equal(reporting?.message, '2 nodes report: node-a, node-b');
    await registry.close();
    registry = f.open();
    assert.equal(await count('cams'), 1);
    const record = path.join(f.stateDir, 'registry', 'discoveries', 'lab', 'sticks.json');
    assert.equal((await stat(record)).mode & 0o777, 0o600);
    await registry.close();
  });

  it('skips bad documents with one error each naming the file and document, and loads the rest', async () => {
    const good = CONFIG.split('---')[0] ?? '';
    const bad = [
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: x1}\nspec: {handler: {name: bogus}}',
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: x2}',
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: x3}\nspec: {handler: {name: simulated}, colour: red}',
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: Bad_Name}\nspec: {handler: {name: simulated}}',
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: x5}\nspec: {handler: {name: simulated}, capacity: 0}',
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: x6}\nspec:\n  handler: {name: simulated}\n  properties: [{name: A, value: b, valueFrom: {secretKeyRef: {name: s, key: k}}}]',
      'apiVersion: edgebridge.io/v1\nkind: Discovery\nmetadata: {name: x7}\nspec: {handler: {name: simulated}}',
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: x8, namespace: ../etc}\nspec: {handler: {name: simulated}}',
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: x9, labels: {a: [1]}}\nspec: {handler: {name: simulated}}',
      'apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: x10}\nspec: {handler: {name: simulated}, nodeSelector: {matchExpressions: [{key: a, operator: In}]}}',
      'apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: "not base64!"}',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}',
      'just a string',
      '[1, 2, 3]',
      good,
      'kind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\ndata: {k: 1}',
    ];
    const f = await fixture([good, ...bad].join('\n---\n'));
    const registry = f.open();
    const list = await registry.listDiscoveries({});
    // A Discovery whose spec alone is wrong stays, marked invalid (its Devices must not vanish).
    assert.deepEqual(
      list.map((d) => d.metadata.name),
      ['cams', 'x1', 'x10', 'x2', 'x3', 'x5', 'x6'],
    );
    for (const d of list) {
      const marked = d.status?.conditions?.find((c) => c.type === 'SpecValid');
      if (d.metadata.name === 'cams') assert.equal(marked, undefined);
      else assert.deepEqual([marked?.status, marked?.reason], ['False', 'InvalidSpec']);
    }
    const errors = f.lines.filter((l) => l.err?.code === 'EDGEBRIDGE_CONFIG_DOCUMENT');
    assert.equal(errors.length, bad.length);
    for (const [i, line] of errors.entries()) {
      assert.ok(
        line.err?.message.startsWith(`${f.configFile}: document ${i + 2}`),
        line.err?.message,
      );
    }
    const messages = errors.map((l) => l.err?.message ?? '');
    assert.match(messages[0] ?? '', /Discovery default\/x1\): spec\.handler\.name: must be one of/);
    assert.match(messages[1] ?? '', /spec: is required/);
    assert.match(messages[2] ?? '', /spec\.colour: unknown field/);
    assert.match(messages[14] ?? '', /duplicate/);
    // Logged once per content, not on every read.
    await registry.listDiscoveries({});
    assert.equal(
      f.lines.filter((l) => l.err?.code === 'EDGEBRIDGE_CONFIG_DOCUMENT').length,
      bad.length,
    );
    await registry.close();
  });

  it('refuses a config file that is not YAML, or missing, until it has read a good one', async () => {
    const f = await fixture('{{{ not: yaml');
    const registry = f.open();
    await assert.rejects(
      registry.listDiscoveries({}),
      (err: unknown) =>
        err instanceof RegistryUnavailableError &&
        err.message.includes(f.configFile) &&
        (err.cause as { code?: string }).code === 'EDGEBRIDGE_CONFIG_FILE',
    );
    await rm(f.configFile);
    await assert.rejects(registry.listDiscoveries({}), RegistryUnavailableError);
    await replaceFile(f.configFile, CONFIG);
    assert.equal((await registry.listDiscoveries({})).length, 2);
    await registry.close();
  });
});

describe('embedded registry: watchDiscoveries', () => {
  it('hands over the complete set first, then after every change, and stops when aborted', async () => {
    const f = await fixture();
    const registry = f.open();
    const seen: Discovery[][] = [];
    const stop = new AbortController();
    const watching = registry.watchDiscoveries((d) => seen.push(d), stop.signal);
    await until('the first set', () => (seen.length >= 1 ? true : undefined));
    assert.deepEqual(
      seen[0]?.map((d) => d.metadata.name),
      ['cams', 'sticks'],
    );

    await replaceFile(f.configFile, CONFIG.replace('capacity: 2', 'capacity: 4'));
    await until('the changed set', () => (seen.length >= 2 ? true : undefined));
    const sticks = seen[1]?.find((d) => d.metadata.name === 'sticks');
    assert.equal(sticks?.spec.capacity, 4);
    assert.equal(sticks?.metadata.generation, 2);
    assert.equal(seen[1]?.length, 2, 'always the complete set');

    // Rewriting the same content changes nothing.
    await replaceFile(f.configFile, CONFIG.replace('capacity: 2', 'capacity: 4'));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(seen.length, 2);

    stop.abort();
    await watching;
    await replaceFile(f.configFile, CONFIG);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(seen.length, 2, 'no call after the watch stopped');
    await registry.close();
  });

  it('keeps the last good set when the file stops being YAML, and reports it once', async () => {
    const f = await fixture();
    const registry = f.open();
    const seen: Discovery[][] = [];
    const stop = new AbortController();
    const watching = registry.watchDiscoveries((d) => seen.push(d), stop.signal);
    await until('the first set', () => (seen.length >= 1 ? true : undefined));

    await replaceFile(f.configFile, '{{{ this is : not [ yaml');
    await until('the error', () =>
      f.lines.some((l) => l.err?.code === 'EDGEBRIDGE_CONFIG_FILE') ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(seen.length, 1);
    assert.equal(f.lines.filter((l) => l.err?.code === 'EDGEBRIDGE_CONFIG_FILE').length, 1);
    assert.equal((await registry.listDiscoveries({})).length, 2);

    await replaceFile(f.configFile, '\u0000\u0001 binary garbage');
    await new Promise((r) => setTimeout(r, 400));
    await rm(f.configFile);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(seen.length, 1);
    assert.equal((await registry.listDiscoveries({})).length, 2);

    await replaceFile(f.configFile, CONFIG.split('---')[0] ?? '');
    await until('the fixed set', () => (seen.length >= 2 ? true : undefined));
    assert.deepEqual(
      seen[1]?.map((d) => d.metadata.name),
      ['cams'],
    );
    stop.abort();
    await watching;
    await registry.close();
  });

  it('sees a file replaced by rename, as editors and kubectl-style tools write it', async () => {
    const f = await fixture();
    const registry = f.open();
    const seen: Discovery[][] = [];
    const stop = new AbortController();
    const watching = registry.watchDiscoveries((d) => seen.push(d), stop.signal);
    await until('the first set', () => (seen.length >= 1 ? true : undefined));
    const temp = `${f.configFile}.tmp`;
    await writeFile(temp, CONFIG.split('---')[0] ?? '');
    await rename(temp, f.configFile);
    await until('the new set', () => (seen.length >= 2 ? true : undefined));
    assert.equal(seen[1]?.length, 1);
    stop.abort();
    await watching;
    await registry.close();
  });

  it('starts calling once a missing config file appears', async () => {
    const f = await fixture(null);
    const registry = f.open();
    const seen: Discovery[][] = [];
    const stop = new AbortController();
    const watching = registry.watchDiscoveries((d) => seen.push(d), stop.signal);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen.length, 0, 'no set is known yet, so none is handed over');
    await replaceFile(f.configFile, CONFIG);
    await until('the set', () => (seen.length >= 1 ? true : undefined));
    assert.equal(seen[0]?.length, 2);
    stop.abort();
    await watching;
    await registry.close();
  });

  it('returns at once for an aborted signal, and ends a running watch on close()', async () => {
    const f = await fixture();
    const registry = f.open();
    let calls = 0;
    await registry.watchDiscoveries(() => calls++, AbortSignal.abort());
    assert.equal(calls, 0);
    const watching = registry.watchDiscoveries(() => calls++, new AbortController().signal);
    await until('the first set', () => (calls >= 1 ? true : undefined));
    await registry.close();
    await watching;
    await registry.close();
    await assert.rejects(registry.listDevices({}), { code: 'EDGEBRIDGE_REGISTRY_CLOSED' });
    await assert.rejects(
      registry.watchDiscoveries(() => calls++, new AbortController().signal),
      { code: 'EDGEBRIDGE_REGISTRY_CLOSED' },
    );
  });

  it('gives an empty set when there is no config file at all', async () => {
    const f = await fixture();
    const registry = new EmbeddedRegistry({ stateDir: f.stateDir, log: f.log });
    const seen: Discovery[][] = [];
    const stop = new AbortController();
    const watching = registry.watchDiscoveries((d) => seen.push(d), stop.signal);
    await until('the set', () => (seen.length >= 1 ? true : undefined));
    assert.deepEqual(seen, [[]]);
    assert.deepEqual(await registry.listDiscoveries({}), []);
    assert.equal(
      await registry.readValue({ kind: 'Secret', namespace: 'default', name: 'x', key: 'y' }),
      undefined,
    );
    stop.abort();
    await watching;
    await registry.close();
  });
});

describe('embedded registry: DeviceSlices folded into Devices', () => {
  it('stores each Device as the controller would write it, in one JSON file', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    await new NodeViews(registry).set(cams, 'node-a', [devicesOf('cam1')]);
    const name = nameOf('cams', 'cam1');
    const stored = await readDevice(f.stateDir, 'default', name);
    const { uid, creationTimestamp } = stored.metadata;
    assert.match(uid ?? '', /^[0-9a-f-]{36}$/);
    assert.match(creationTimestamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(stored.metadata.ownerReferences, [
      {
        apiVersion: 'edgebridge.io/v1alpha1',
        kind: 'Discovery',
        name: 'cams',
        uid: cams.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.deepEqual(stored.spec, {
      discovery: 'cams',
      handler: 'simulated',
      shared: true,
      id: 'cam1',
      properties: { DEVICE_ID: 'cam1' },
      capacity: 1,
    });
    assert.deepEqual(stored.status?.nodes, [{ name: 'node-a' }]);
    // The spec and status fit the CRD's schema exactly (no unknown fields, nothing defaulted).
    assert.deepEqual(checkSchema(deviceSpecSchema, stored.spec, 'spec'), stored.spec);
    assert.deepEqual(checkSchema(deviceStatusSchema, stored.status, 'status'), stored.status);
    assert.deepEqual(await registry.listDevices({}), [stored]);
    await registry.close();
  });

  it('does not rewrite a Device when nothing changed, and lists every node that sees a shared one', async () => {
    const f = await fixture();
    const a = f.open();
    const b = f.open();
    const cams = byName(await discoveriesOf(a), 'cams');
    const viewsA = new NodeViews(a);
    await viewsA.set(cams, 'node-a', [devicesOf('cam1')]);
    const file = deviceFile(f.stateDir, 'default', nameOf('cams', 'cam1'));
    const before = await stat(file);
    const viewsB = new NodeViews(b);
    await viewsB.set(cams, 'node-b', [
      devicesOf('cam1', { mounts: [{ hostPath: '/x', containerPath: '/x' }] }),
    ]);
    let device = await readDevice(f.stateDir, 'default', nameOf('cams', 'cam1'));
    assert.deepEqual(device.status?.nodes, [
      { name: 'node-a' },
      { name: 'node-b', mounts: [{ hostPath: '/x', containerPath: '/x' }] },
    ]);
    assert.equal(device.metadata.generation, 1, 'a status change does not bump the generation');
    const written = await stat(file);
    await viewsB.set(cams, 'node-b', [
      devicesOf('cam1', { mounts: [{ hostPath: '/x', containerPath: '/x' }] }),
    ]);
    assert.equal((await stat(file)).ino, written.ino, 'unchanged: not written');
    assert.notEqual(written.ino, before.ino);
    await viewsB.set(cams, 'node-b', []);
    device = await readDevice(f.stateDir, 'default', nameOf('cams', 'cam1'));
    assert.deepEqual(device.status?.nodes, [{ name: 'node-a' }]);
    await viewsA.set(cams, 'node-a', []);
    await assert.rejects(stat(file), { code: 'ENOENT' });
    await a.close();
    await b.close();
  });

  it('refuses a slice write from a stale copy (another process wrote first)', async () => {
    const f = await fixture();
    const a = f.open();
    const b = f.open();
    const cams = byName(await discoveriesOf(a), 'cams');
    await new NodeViews(a).set(cams, 'node-a', [devicesOf('cam1')]);
    await assert.rejects(
      new NodeViews(b).set(cams, 'node-a', [devicesOf('cam2')]),
      RegistryConflictError,
    );
    await a.close();
    await b.close();
  });

  it('waits for a live lock and gives up with a retryable error', async () => {
    const f = await fixture();
    const registry = f.open({ lockTimeoutMs: 300 });
    const cams = byName(await discoveriesOf(registry), 'cams');
    const dir = path.join(f.stateDir, 'registry', 'deviceslices', 'default');
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'cams-node-a-0.lock'),
      JSON.stringify({ pid: process.pid, host: hostname(), token: 'someone else' }),
    );
    await assert.rejects(
      new NodeViews(registry).set(cams, 'node-a', [devicesOf('cam1')]),
      (err: unknown) =>
        err instanceof RegistryUnavailableError &&
        (err.cause as { code?: string }).code === 'EDGEBRIDGE_LOCK_TIMEOUT',
    );
    await registry.close();
  });

  it('rejects slice names that are not DNS names (and would be paths)', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    await assert.rejects(
      new NodeViews(registry).set(
        { ...cams, metadata: { ...cams.metadata, namespace: '../etc' } },
        'node-a',
        [],
      ),
      RegistryRejectedError,
    );
    await assert.rejects(registry.deleteSlice('..', 'x'), RegistryRejectedError);
    assert.deepEqual(await registry.listDevices({ namespace: '../..' }), []);
    await registry.close();
  });

  it('skips a damaged device file with a warning instead of failing the list', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    await new NodeViews(registry).set(cams, 'node-a', [devicesOf('cam1')]);
    await writeFile(deviceFile(f.stateDir, 'default', 'broken'), '{"apiVersion": ');
    await writeFile(deviceFile(f.stateDir, 'default', 'other'), JSON.stringify({ kind: 'Pod' }));
    assert.deepEqual(
      (await registry.listDevices({})).map((d) => d.metadata.name),
      [nameOf('cams', 'cam1')],
    );
    assert.ok(f.lines.some((l) => l.level === 40 && l.msg.includes('not a Device')));
    await registry.close();
  });

  it('deletes the slices and Devices of a Discovery removed from the config file, while watching', async () => {
    const f = await fixture();
    const registry = f.open();
    const list = await discoveriesOf(registry);
    const seen: Discovery[][] = [];
    const stop = new AbortController();
    const watching = registry.watchDiscoveries((d) => seen.push(d), stop.signal);
    await until('the first set', () => (seen.length >= 1 ? true : undefined));
    const views = new NodeViews(registry);
    await views.set(byName(list, 'cams'), 'node-a', [devicesOf('cam1')]);
    await views.set(byName(list, 'sticks'), 'node-a', [devicesOf('stick1')], false);
    await views.set(byName(list, 'sticks'), 'node-b', [devicesOf('stick2')], false);
    assert.equal((await registry.listDevices({})).length, 3);

    await writeFile(
      f.configFile,
      CONFIG.replace(
        /---\napiVersion: edgebridge.io\/v1alpha1\nkind: Discovery\nmetadata: \{name: sticks[\s\S]*?(?=---)/,
        '',
      ),
    );
    await until('sticks gone', () => (seen.length >= 2 ? true : undefined));
    assert.deepEqual(
      seen[1]?.map((d) => d.metadata.name),
      ['cams'],
    );
    assert.deepEqual(
      (await registry.listDevices({})).map((d) => d.metadata.name),
      [nameOf('cams', 'cam1')],
    );
    assert.deepEqual(
      (await readdir(path.join(f.stateDir, 'registry', 'deviceslices', 'lab'))).filter((n) =>
        n.endsWith('.json'),
      ),
      [],
    );
    await assert.rejects(
      stat(path.join(f.stateDir, 'registry', 'discoveries', 'lab', 'sticks.json')),
      { code: 'ENOENT' },
    );
    stop.abort();
    await watching;
    await registry.close();
  });

  it('answers queries by namespace, label and field selector, sorted by namespace then name', async () => {
    const f = await fixture();
    const registry = f.open();
    const list = await discoveriesOf(registry);
    const cams = byName(list, 'cams');
    const sticks = byName(list, 'sticks');
    const views = new NodeViews(registry);
    await views.set(
      sticks,
      'node-a',
      [devicesOf('b', { labels: { vendor: '1d6b' } }), devicesOf('a')],
      false,
    );
    await views.set(cams, 'node-a', [devicesOf('z')]);
    await views.set(cams, 'node-b', [devicesOf('a')]);
    // Names as the old test spelled them, so that its expectations read the same.
    const alias = new Map([
      [nameOf('cams', 'a'), 'cams-a'],
      [nameOf('cams', 'z'), 'cams-z'],
      [nameOf('sticks', 'a'), 'sticks-a'],
      [nameOf('sticks', 'b'), 'sticks-b'],
    ]);
    const names = async (query: Parameters<EmbeddedRegistry['listDevices']>[0]) =>
      (await registry.listDevices(query))
        .map((d) => `${d.metadata.namespace}/${alias.get(d.metadata.name) ?? d.metadata.name}`)
        .sort();

    assert.deepEqual(await names({}), [
      'default/cams-a',
      'default/cams-z',
      'lab/sticks-a',
      'lab/sticks-b',
    ]);
    assert.deepEqual(await names({ namespace: 'lab' }), ['lab/sticks-a', 'lab/sticks-b']);
    assert.deepEqual(await names({ namespace: 'nowhere' }), []);
    assert.deepEqual(await names({ labelSelector: 'edgebridge.io/handler=simulated' }), [
      'default/cams-a',
      'default/cams-z',
      'lab/sticks-a',
      'lab/sticks-b',
    ]);
    assert.deepEqual(await names({ labelSelector: 'vendor in (1d6b, 0bda)' }), ['lab/sticks-b']);
    assert.deepEqual(await names({ labelSelector: '!vendor,edgebridge.io/discovery=sticks' }), [
      'lab/sticks-a',
    ]);
    assert.deepEqual(await names({ fieldSelector: 'spec.handler=simulated,spec.discovery=cams' }), [
      'default/cams-a',
      'default/cams-z',
    ]);
    assert.deepEqual(
      await names({ fieldSelector: `spec.discovery=cams,metadata.name!=${nameOf('cams', 'a')}` }),
      ['default/cams-z'],
    );
    assert.deepEqual(
      await names({
        namespace: 'lab',
        fieldSelector: 'metadata.namespace=lab',
        labelSelector: 'vendor',
      }),
      ['lab/sticks-b'],
    );

    await assert.rejects(
      registry.listDevices({ labelSelector: 'vendor in (' }),
      (err: unknown) => err instanceof RegistryRejectedError && err.cause instanceof SelectorError,
    );
    await assert.rejects(
      registry.listDevices({ fieldSelector: 'spec.id=x' }),
      RegistryRejectedError,
    );

    const discoveryNames = async (query: Parameters<EmbeddedRegistry['listDiscoveries']>[0]) =>
      (await registry.listDiscoveries(query)).map((d) => d.metadata.name);
    assert.deepEqual(await discoveryNames({ fieldSelector: 'spec.handler.name=simulated' }), [
      'cams',
      'sticks',
    ]);
    assert.deepEqual(await discoveryNames({ labelSelector: 'site=north' }), ['cams']);
    assert.deepEqual(await discoveryNames({ namespace: 'lab' }), ['sticks']);
    await assert.rejects(
      registry.listDiscoveries({ fieldSelector: 'spec.handler=usb' }),
      RegistryRejectedError,
    );
    await registry.close();
  });
});
