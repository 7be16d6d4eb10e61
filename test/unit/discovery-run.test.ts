import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import type { DiscoveredDevice, DiscoveryHandler } from '../../discovery-handlers/handler.ts';
import { DiscoveryRun } from '../../src/agent/discovery-run.ts';
import type { Discovery } from '../../src/api/types.ts';
import { EmbeddedRegistry } from '../../src/registry/embedded/registry.ts';
import { AdaptiveLimit } from '../../src/util/adaptive-limit.ts';
import type { DiscoveryPublisher } from '../../src/agent/discovery-publisher.ts';
import { NodeSlices } from '../../src/agent/node-slices.ts';

const silentPublisher: DiscoveryPublisher = {
  data: () => undefined,
  state: () => undefined,
  event: () => undefined,
  observe: () => undefined,
  close: () => Promise.resolve(),
};

/** A handler that lists one device, then waits for `release` whatever its signal says, then lists another. */
function stubbornHandler() {
  let listed!: () => void;
  let release!: () => void;
  const firstListed = new Promise<void>((r) => (listed = r));
  const released = new Promise<void>((r) => (release = r));
  let lateListed = false;
  const handler: DiscoveryHandler = {
    name: 'simulated',
    shared: true,
    validate: (d) => d,
    async *discover(): AsyncGenerator<DiscoveredDevice[]> {
      yield [{ id: 'early', properties: {} }];
      listed();
      await released;
      lateListed = true;
      yield [{ id: 'late', properties: {} }];
    },
  };
  return { handler, firstListed, release, lateListed: () => lateListed };
}

/** An embedded registry holding one Discovery, and a log whose lines the test reads. */
async function registryWith(name: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'discovery-run-'));
  const config = path.join(dir, 'edgebridge.yaml');
  writeFileSync(
    config,
    `apiVersion: edgebridge.io/v1alpha1\nkind: Discovery\nmetadata: {name: ${name}, namespace: default}\nspec:\n  handler: {name: simulated}\n  gracePeriodSeconds: 0\n`,
  );
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'warn' },
    { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  );
  const registry = new EmbeddedRegistry({
    stateDir: path.join(dir, 'state'),
    configFile: config,
    log,
  });
  const [discovery] = await registry.listDiscoveries({});
  assert.ok(discovery !== undefined);
  return { registry, discovery, log, lines };
}

/** A run of `handler` on node n1, with the node's slice watch; `watching` ends the watch. */
function runOf(
  discovery: Discovery,
  registry: EmbeddedRegistry,
  log: Logger,
  handler: DiscoveryHandler,
  watching: AbortController,
): DiscoveryRun {
  const slices = new NodeSlices(registry, 'n1', log);
  void slices.run(watching.signal);
  return new DiscoveryRun({
    discovery,
    node: 'n1',
    nodeUid: () => undefined,
    registry,
    slices,
    graceSeconds: 0,
    writeLimit: new AdaptiveLimit(),
    log,
    publishers: () => silentPublisher,
    onError: () => undefined,
    onCount: () => undefined,
    stopTimeoutMs: 200,
    findHandler: () => handler,
  });
}

describe('DiscoveryRun conditions', () => {
  it("shows a handler's problem as Discovering=False naming the node, and clears it when the handler recovers", async () => {
    const { registry, discovery, log } = await registryWith('flaky');
    let report!: (problem: string | undefined) => void;
    const handler: DiscoveryHandler = {
      name: 'simulated',
      shared: true,
      validate: (d) => d,
      async *discover(_details, ctx): AsyncGenerator<DiscoveredDevice[]> {
        report = (p) => ctx.reportProblem?.(p);
        yield [];
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      },
    };
    const watching = new AbortController();
    const run = runOf(discovery, registry, log, handler, watching);
    const discovering = async (want: string) => {
      for (let i = 0; i < 100; i++) {
        const [d] = await registry.listDiscoveries({});
        const c = d?.status?.conditions?.find((x) => x.type === 'Discovering');
        if (c?.status === want) return c;
        await sleep(50);
      }
      return assert.fail(`Discovering never became ${want}`);
    };
    while (report === undefined) await sleep(10);
    report('devices file rejected: /dev/zero is a character device, not a regular file');
    const failed = await discovering('False');
    assert.equal(
      failed.message,
      'on node n1: devices file rejected: /dev/zero is a character device, not a regular file',
    );
    report(undefined);
    await discovering('True');
    await run.stop(false);
    watching.abort();
    await registry.close();
  });
});

describe('DiscoveryRun.stop', () => {
  it('abandons a handler that does not return after its signal aborted, names the discovery, and ignores its late lists', async () => {
    const { registry, discovery, log, lines } = await registryWith('stuck');
    const stub = stubbornHandler();
    const watching = new AbortController();
    const run = runOf(
      discovery,
      registry,
      log.child({ discovery: 'stuck' }),
      stub.handler,
      watching,
    );
    await stub.firstListed;

    // Without the stop deadline this never resolves: the handler is still waiting.
    await run.stop(false);
    const warning = lines.find((l) => /abandoned/.test(String(l.msg)));
    assert.equal(warning?.discovery, 'stuck');

    stub.release();
    await sleep(100);
    assert.ok(stub.lateListed(), 'the handler went on after it was abandoned');
    const ids = (await registry.listDevices({})).map((d) => d.spec.id);
    assert.ok(!ids.includes('late'), `its late list is ignored (devices: ${ids.join(', ')})`);
    watching.abort();
    await registry.close();
  });
});
