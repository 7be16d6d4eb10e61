import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { createNetwork, type Network } from '../harness/netns.ts';
import { readAvahiConfig, startAvahi, type Avahi } from '../harness/avahi.ts';

const browseFixture = path.join(import.meta.dirname, 'fixtures', 'mdns-browse.ts');

interface Found {
  name: string;
  type: string;
  protocol: string;
  port: number;
  host: string;
  addresses: string[];
  txt: Record<string, string>;
}

describe('avahi mDNS peer', () => {
  // Started by the first test (not in before()) so that a missing peer fails the
  // tests with MissingPeerError instead of cancelling them.
  // avahi runs in one namespace, the browser in a peer namespace on the same bridge.
  let started: Promise<{ net: Network; avahi: Avahi }> | undefined;
  const peers = (): Promise<{ net: Network; avahi: Avahi }> =>
    (started ??= (async () => {
      const net = await createNetwork({ members: ['avahi', 'browser'] });
      try {
        return { net, avahi: await startAvahi({ ns: net.ns('avahi') }) };
      } catch (err) {
        await net.destroy();
        throw err;
      }
    })());

  after(async () => {
    const p = await started?.catch(() => undefined);
    await p?.avahi.stop();
    await p?.net.destroy();
  });

  it('is confined to its namespace veth', async () => {
    const { net, avahi } = await peers();
    const config = readAvahiConfig(avahi.configFile);
    assert.equal(config['server.allow-interfaces'], net.ns('avahi').ifname);
    assert.ok(avahi.pid !== undefined);
    // The daemon's network namespace is not ours: its multicast cannot reach the real interface.
    assert.notEqual(readlinkSync(`/proc/${avahi.pid}/ns/net`), readlinkSync('/proc/self/ns/net'));
  });

  it('publishes a service that bonjour-service sees from a peer namespace, and that avahi-browse sees only on the veth', async () => {
    const { net, avahi } = await peers();
    const service = await avahi.publishService({
      name: 'Edge Cam 1',
      type: '_http._tcp',
      port: 8089,
      txt: { path: '/stream', model: 'eb-test' },
    });
    try {
      const browser = net.ns('browser');
      const { stdout } = await browser.exec(
        process.execPath,
        [browseFixture, browser.address, 'http', 'Edge Cam 1', '10000'],
        { timeout: 20000 },
      );
      const found = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Found)
        .find((s) => s.name === 'Edge Cam 1');
      assert.ok(found, `bonjour-service did not report the service; output:\n${stdout}`);
      assert.equal(found.type, 'http');
      assert.equal(found.protocol, 'tcp');
      assert.equal(found.port, 8089);
      assert.deepEqual(found.txt, { path: '/stream', model: 'eb-test' });
      assert.equal(found.host, `${avahi.hostName}.local`);
      assert.deepEqual(found.addresses, [net.ns('avahi').address]);

      const seen = await avahi.browse();
      const ours = seen.find((s) => s.name === 'Edge Cam 1');
      assert.ok(ours, 'avahi-browse did not resolve the service');
      for (const s of seen)
        assert.equal(
          s.interface,
          net.ns('avahi').ifname,
          `avahi-browse saw ${s.name} on ${s.interface}`,
        );
      assert.equal(ours.port, 8089);
      assert.equal(ours.address, net.ns('avahi').address);
      assert.deepEqual(ours.txt, { path: '/stream', model: 'eb-test' });
    } finally {
      await service.unpublish();
    }
  });
});
