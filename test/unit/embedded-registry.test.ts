import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import {
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino, type Logger } from 'pino';
import { deviceSpecSchema, deviceStatusSchema } from '../../src/api/schema.ts';
import { deviceName } from '../../src/api/names.ts';
import type { Device, Discovery } from '../../src/api/types.ts';
import { EmbeddedRegistry } from '../../src/registry/embedded/registry.ts';
import { checkSchema } from '../../src/util/schema-check.ts';
import { stableUid } from '../../src/registry/embedded/meta.ts';
import { RegistryRejectedError, RegistryUnavailableError } from '../../src/registry/errors.ts';
import type { DeviceView } from '../../src/registry/registry.ts';
import { SelectorError } from '../../src/registry/selectors.ts';

/** Replaces a file the way editors and config tools do (write aside, rename), so a watcher never reads it half-written. */
async function replaceFile(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

const root = path.resolve(import.meta.dirname, '../..');
const execFileAsync = promisify(execFile);

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

function viewOf(discovery: Discovery, id: string, node: string, extra: Partial<DeviceView> = {}) {
  const handler = discovery.spec.handler.name;
  const v: DeviceView = {
    namespace: discovery.metadata.namespace ?? 'default',
    name: `${discovery.metadata.name}-${id}`,
    discovery: { name: discovery.metadata.name, uid: discovery.metadata.uid ?? '' },
    labels: {
      'edgebridge.io/discovery': discovery.metadata.name,
      'edgebridge.io/handler': handler,
    },
    spec: {
      discovery: discovery.metadata.name,
      handler,
      shared: discovery.metadata.name !== 'sticks',
      id,
      properties: { DEVICE_ID: id },
      capacity: discovery.spec.capacity ?? 1,
    },
    node: { name: node },
    ...extra,
  };
  return v;
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

  it('stores Discovery status and returns it with the Discovery, also after a reopen', async () => {
    const f = await fixture();
    let registry = f.open();
    const status = {
      observedGeneration: 1,
      conditions: [
        {
          type: 'DetailsValid',
          status: 'True' as const,
          reason: 'Valid',
          message: '',
          lastTransitionTime: '2025-01-01T00:00:00Z',
        },
      ],
    };
    await registry.updateDiscoveryStatus('lab', 'sticks', { ...status, devices: 3 });
    // status.devices is the store's own count of Devices: a caller's value is ignored.
    assert.deepEqual(byName(await discoveriesOf(registry), 'sticks').status, status);
    assert.equal(byName(await discoveriesOf(registry), 'cams').status, undefined);
    await registry.close();
    registry = f.open();
    assert.deepEqual(byName(await discoveriesOf(registry), 'sticks').status, status);
    const record = path.join(f.stateDir, 'registry', 'discoveries', 'lab', 'sticks.json');
    const stored = JSON.parse(await readFile(record, 'utf8')) as Discovery;
    assert.equal(stored.kind, 'Discovery');
    assert.deepEqual(stored.status, status);
    assert.equal((await stat(record)).mode & 0o777, 0o600);
    await assert.rejects(
      registry.updateDiscoveryStatus('default', 'ghost', {}),
      (err: unknown) => err instanceof RegistryRejectedError && err.status === 404,
    );
    await registry.close();
  });

  it('keeps status.devices equal to the number of Devices of each Discovery, writing only when it changes', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    const sticks = byName(await discoveriesOf(registry), 'sticks');
    const named = (d: Discovery, id: string, node: string, shared = true): DeviceView => ({
      ...viewOf(d, id, node),
      name: deviceName(d.metadata.name, id, shared, node),
    });
    const count = async (name: string) =>
      byName(await discoveriesOf(registry), name).status?.devices;
    await registry.applyDevice(named(cams, 'c1', 'node-a'));
    await registry.applyDevice(named(cams, 'c2', 'node-a'));
    await registry.applyDevice(named(sticks, 's1', 'node-a', false));
    assert.equal(await count('cams'), 2);
    assert.equal(await count('sticks'), 1);

    // A write that creates no Device, and one that deletes none, leave the record alone.
    const record = path.join(f.stateDir, 'registry', 'discoveries', 'default', 'cams.json');
    const before = (await stat(record)).ino;
    await registry.applyDevice(named(cams, 'c1', 'node-a'));
    await registry.applyDevice(named(cams, 'c1', 'node-b'));
    await registry.removeDeviceNode('default', deviceName('cams', 'c1', true, ''), 'node-b');
    await registry.removeDeviceNode('default', deviceName('cams', 'c1', true, ''), 'node-b');
    assert.equal((await stat(record)).ino, before);

    await registry.removeDeviceNode('default', deviceName('cams', 'c1', true, ''), 'node-a');
    assert.equal(await count('cams'), 1);
    await registry.removeDeviceNode('default', deviceName('cams', 'c2', true, ''), 'node-a');
    assert.equal(await count('cams'), 0);
    assert.equal(await count('sticks'), 1);
    await registry.close();
  });

  it('counts Devices another process wrote and forgets a Device file removed by hand', async () => {
    const f = await fixture();
    // Two registries on one state directory keep two indexes, as two processes would.
    const first = f.open();
    const second = f.open();
    const cams = byName(await discoveriesOf(first), 'cams');
    const count = async () => byName(await discoveriesOf(first), 'cams').status?.devices;
    await first.applyDevice(viewOf(cams, 'c1', 'node-a'));
    await first.applyDevice(viewOf(cams, 'c2', 'node-a'));
    await second.applyDevice(viewOf(cams, 'c3', 'node-b'));
    assert.equal(await count(), 3);
    // The first registry's next count must include the Device it did not write.
    await first.applyDevice(viewOf(cams, 'c4', 'node-a'));
    assert.equal(await count(), 4);

    await rm(deviceFile(f.stateDir, 'default', 'cams-c1'));
    await first.applyDevice(viewOf(cams, 'c5', 'node-a'));
    assert.equal(await count(), 4);
    // The removed file is not in the index either: applying c1 again creates it.
    await first.applyDevice(viewOf(cams, 'c1', 'node-a'));
    assert.equal(await count(), 5);
    assert.equal((await first.listDevices({ namespace: 'default' })).length, 5);
    await first.close();
    await second.close();
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

describe('embedded registry: Devices', () => {
  it('stores each Device as the custom resource would be, in one JSON file', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    const view = viewOf(cams, 'cam1', 'node-a');
    await registry.applyDevice(view);
    const stored = await readDevice(f.stateDir, 'default', 'cams-cam1');
    const { uid, creationTimestamp } = stored.metadata;
    assert.match(uid ?? '', /^[0-9a-f-]{36}$/);
    assert.match(creationTimestamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(stored, {
      apiVersion: 'edgebridge.io/v1alpha1',
      kind: 'Device',
      metadata: {
        name: 'cams-cam1',
        namespace: 'default',
        uid,
        resourceVersion: '1',
        generation: 1,
        creationTimestamp,
        labels: { 'edgebridge.io/discovery': 'cams', 'edgebridge.io/handler': 'simulated' },
        ownerReferences: [
          {
            apiVersion: 'edgebridge.io/v1alpha1',
            kind: 'Discovery',
            name: 'cams',
            uid: cams.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: view.spec,
      status: { nodes: [{ name: 'node-a' }] },
    });
    // The spec and status fit the CRD's schema exactly (no unknown fields, nothing defaulted).
    assert.deepEqual(checkSchema(deviceSpecSchema, stored.spec, 'spec'), stored.spec);
    assert.deepEqual(checkSchema(deviceStatusSchema, stored.status, 'status'), stored.status);
    assert.deepEqual(await registry.listDevices({}), [stored]);
    await registry.close();
  });

  it('does not rewrite the file when nothing changed, and rewrites it when something did', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    const view = viewOf(cams, 'cam1', 'node-a');
    await registry.applyDevice(view);
    const file = deviceFile(f.stateDir, 'default', 'cams-cam1');
    const before = await stat(file);
    await new Promise((r) => setTimeout(r, 20));
    await registry.applyDevice(structuredClone(view));
    await registry.applyDevice({ ...view, labels: { ...view.labels } });
    const same = await stat(file);
    assert.equal(same.ino, before.ino);
    assert.equal(same.mtimeMs, before.mtimeMs);
    assert.equal(
      (await readDevice(f.stateDir, 'default', 'cams-cam1')).metadata.resourceVersion,
      '1',
    );

    await registry.applyDevice({ ...view, spec: { ...view.spec, properties: { DEVICE_ID: 'x' } } });
    const changed = await stat(file);
    assert.notEqual(changed.ino, before.ino);
    const device = await readDevice(f.stateDir, 'default', 'cams-cam1');
    assert.equal(device.metadata.resourceVersion, '2');
    assert.equal(device.metadata.generation, 2, 'a spec change bumps the generation');

    await registry.applyDevice({
      ...view,
      spec: { ...view.spec, properties: { DEVICE_ID: 'x' } },
      node: { name: 'node-a', mounts: [{ hostPath: '/a', containerPath: '/b' }] },
    });
    const statusOnly = await readDevice(f.stateDir, 'default', 'cams-cam1');
    assert.equal(statusOnly.metadata.resourceVersion, '3');
    assert.equal(statusOnly.metadata.generation, 2, 'a status change does not');
    assert.equal(statusOnly.metadata.uid, device.metadata.uid);
    assert.equal(statusOnly.metadata.creationTimestamp, device.metadata.creationTimestamp);
    await registry.close();
  });

  it('survives a reopen with every Device as it was', async () => {
    const f = await fixture();
    let registry = f.open();
    const list = await discoveriesOf(registry);
    await registry.applyDevice(viewOf(byName(list, 'cams'), 'cam1', 'node-a'));
    await registry.applyDevice(viewOf(byName(list, 'sticks'), 'stick1', 'node-a'));
    const before = await registry.listDevices({});
    await registry.close();
    registry = f.open();
    assert.deepEqual(await registry.listDevices({}), before);
    assert.equal(before.length, 2);
    await registry.close();
  });

  it('lets two nodes share a Device, each setting and removing only its own entry', async () => {
    const f = await fixture();
    const a = f.open();
    const b = f.open();
    const cams = byName(await discoveriesOf(a), 'cams');
    await a.applyDevice(viewOf(cams, 'cam1', 'node-a'));
    await b.applyDevice(
      viewOf(cams, 'cam1', 'node-b', {
        node: { name: 'node-b', mounts: [{ hostPath: '/x', containerPath: '/x' }] },
      }),
    );
    // node-a changes its own entry: node-b's stays as it was.
    await a.applyDevice(
      viewOf(cams, 'cam1', 'node-a', {
        node: { name: 'node-a', deviceNodes: [{ hostPath: '/dev/video0' }] },
      }),
    );
    let device = await readDevice(f.stateDir, 'default', 'cams-cam1');
    assert.deepEqual(device.status?.nodes, [
      { name: 'node-a', deviceNodes: [{ hostPath: '/dev/video0' }] },
      { name: 'node-b', mounts: [{ hostPath: '/x', containerPath: '/x' }] },
    ]);
    const uid = device.metadata.uid;

    await a.removeDeviceNode('default', 'cams-cam1', 'node-a');
    device = await readDevice(f.stateDir, 'default', 'cams-cam1');
    assert.deepEqual(device.status?.nodes, [
      { name: 'node-b', mounts: [{ hostPath: '/x', containerPath: '/x' }] },
    ]);
    assert.equal(device.metadata.uid, uid);
    // Removing an entry that is not there changes nothing.
    await a.removeDeviceNode('default', 'cams-cam1', 'node-a');
    await a.removeDeviceNode('default', 'no-such-device', 'node-a');

    await b.removeDeviceNode('default', 'cams-cam1', 'node-b');
    await assert.rejects(stat(deviceFile(f.stateDir, 'default', 'cams-cam1')), { code: 'ENOENT' });
    assert.deepEqual(await a.listDevices({}), []);
    await a.close();
    await b.close();
  });

  it('loses no update when two processes write the same Device at once (lock per object)', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    const script = `
      import { pino } from 'pino';
      const { EmbeddedRegistry } = await import(process.env.MODULE);
      const r = new EmbeddedRegistry({ stateDir: process.env.STATE, log: pino({ level: 'silent' }) });
      const view = JSON.parse(process.env.VIEW);
      for (let i = 0; i < 25; i++) {
        await r.applyDevice({ ...view, node: { name: process.env.PREFIX + '-' + i } });
      }
      for (let i = 0; i < 25; i += 2) await r.removeDeviceNode(view.namespace, view.name, process.env.PREFIX + '-' + i);
      await r.close();
    `;
    const run = (prefix: string) =>
      execFileAsync(process.execPath, ['--input-type=module', '-e', script], {
        cwd: root,
        env: {
          ...process.env,
          MODULE: path.join(root, 'src/registry/embedded/registry.ts'),
          STATE: f.stateDir,
          VIEW: JSON.stringify(viewOf(cams, 'cam1', 'x')),
          PREFIX: prefix,
        },
      });
    await Promise.all([run('a'), run('b'), run('c')]);
    const device = await readDevice(f.stateDir, 'default', 'cams-cam1');
    const odd = Array.from({ length: 12 }, (_, i) => 2 * i + 1);
    const expected = ['a', 'b', 'c'].flatMap((p) => odd.map((i) => `${p}-${i}`)).sort();
    assert.deepEqual(
      device.status?.nodes?.map((n) => n.name),
      expected,
    );
    const leftovers = (await readdir(path.dirname(deviceFile(f.stateDir, 'default', 'x')))).filter(
      (n) => n !== 'cams-cam1.json',
    );
    assert.deepEqual(leftovers, [], 'no lock or temp file is left behind');
    await registry.close();
  });

  it('breaks the lock of a process that died, and a lock too old to be held', async () => {
    const f = await fixture();
    const registry = f.open({ lockTimeoutMs: 5000 });
    const cams = byName(await discoveriesOf(registry), 'cams');
    const dir = path.dirname(deviceFile(f.stateDir, 'default', 'x'));
    await mkdir(dir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    assert.ok(dead !== undefined);
    await writeFile(
      path.join(dir, 'cams-cam1.lock'),
      JSON.stringify({ pid: dead, host: hostname(), token: 'dead' }),
    );
    const started = Date.now();
    await registry.applyDevice(viewOf(cams, 'cam1', 'node-a'));
    assert.ok(Date.now() - started < 2000, 'a dead holder is noticed at once');

    const old = path.join(dir, 'cams-cam2.lock');
    await writeFile(old, 'garbage');
    const past = new Date(Date.now() - 60_000);
    await utimes(old, past, past);
    await registry.applyDevice(viewOf(cams, 'cam2', 'node-a'));
    assert.deepEqual((await readdir(dir)).sort(), ['cams-cam1.json', 'cams-cam2.json']);
    await registry.close();
  });

  it('waits for a live lock and gives up with a retryable error', async () => {
    const f = await fixture();
    const registry = f.open({ lockTimeoutMs: 300 });
    const cams = byName(await discoveriesOf(registry), 'cams');
    const dir = path.dirname(deviceFile(f.stateDir, 'default', 'x'));
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'cams-cam1.lock'),
      JSON.stringify({ pid: process.pid, host: hostname(), token: 'someone else' }),
    );
    await assert.rejects(
      registry.applyDevice(viewOf(cams, 'cam1', 'node-a')),
      (err: unknown) =>
        err instanceof RegistryUnavailableError &&
        (err.cause as { code?: string }).code === 'EDGEBRIDGE_LOCK_TIMEOUT',
    );
    await registry.close();
  });

  it('rejects names that are not DNS names (and would be paths)', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    for (const bad of [
      { namespace: '../etc' },
      { name: '../../passwd' },
      { name: 'a/b' },
      { name: 'UPPER' },
      { name: '' },
      { node: { name: '' } },
    ]) {
      await assert.rejects(
        registry.applyDevice({ ...viewOf(cams, 'cam1', 'node-a'), ...bad }),
        RegistryRejectedError,
        JSON.stringify(bad),
      );
    }
    await assert.rejects(registry.removeDeviceNode('..', 'x', 'node-a'), RegistryRejectedError);
    assert.deepEqual(await registry.listDevices({ namespace: '../..' }), []);
    await registry.close();
  });

  it('skips a damaged device file with a warning instead of failing the list', async () => {
    const f = await fixture();
    const registry = f.open();
    const cams = byName(await discoveriesOf(registry), 'cams');
    await registry.applyDevice(viewOf(cams, 'cam1', 'node-a'));
    await writeFile(deviceFile(f.stateDir, 'default', 'broken'), '{"apiVersion": ');
    await writeFile(deviceFile(f.stateDir, 'default', 'other'), JSON.stringify({ kind: 'Pod' }));
    assert.deepEqual(
      (await registry.listDevices({})).map((d) => d.metadata.name),
      ['cams-cam1'],
    );
    assert.ok(f.lines.some((l) => l.level === 40 && l.msg.includes('not a Device')));
    await registry.close();
  });

  it('deletes the Devices of a Discovery removed from the config file, while watching', async () => {
    const f = await fixture();
    const registry = f.open();
    const list = await discoveriesOf(registry);
    const seen: Discovery[][] = [];
    const stop = new AbortController();
    const watching = registry.watchDiscoveries((d) => seen.push(d), stop.signal);
    await until('the first set', () => (seen.length >= 1 ? true : undefined));
    await registry.applyDevice(viewOf(byName(list, 'cams'), 'cam1', 'node-a'));
    await registry.applyDevice(viewOf(byName(list, 'sticks'), 'stick1', 'node-a'));
    await registry.applyDevice(viewOf(byName(list, 'sticks'), 'stick2', 'node-b'));
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
      ['cams-cam1'],
    );
    await assert.rejects(
      stat(path.join(f.stateDir, 'registry', 'discoveries', 'lab', 'sticks.json')),
      { code: 'ENOENT' },
    );
    // An agent that has not caught up yet cannot bring a Device of the gone Discovery back.
    await registry.applyDevice(viewOf(byName(list, 'sticks'), 'stick1', 'node-a'));
    assert.equal((await registry.listDevices({ namespace: 'lab' })).length, 0);

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
    await registry.applyDevice(
      viewOf(sticks, 'b', 'node-a', {
        labels: { 'edgebridge.io/handler': 'simulated', vendor: '1d6b' },
      }),
    );
    await registry.applyDevice(viewOf(cams, 'z', 'node-a'));
    await registry.applyDevice(viewOf(cams, 'a', 'node-b'));
    await registry.applyDevice(viewOf(sticks, 'a', 'node-a'));
    const names = async (query: Parameters<EmbeddedRegistry['listDevices']>[0]) =>
      (await registry.listDevices(query)).map((d) => `${d.metadata.namespace}/${d.metadata.name}`);

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
    assert.deepEqual(await names({ fieldSelector: 'spec.discovery=cams,metadata.name!=cams-a' }), [
      'default/cams-z',
    ]);
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
