// The uplink against real mosquitto brokers: a node broker the devices publish
// to, and a cloud broker that is stopped, restarted and served over TLS. The
// spool is real (files on disk, a small tmpfs, bytes damaged on disk), and one
// test SIGKILLs the uplink process at random moments.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import {
  startUplink,
  uplinkConfigFrom,
  UplinkConfigError,
  UplinkRefusedError,
  type RunningUplink,
} from '../../src/uplink/index.ts';
import { makeMqttTlsCerts } from '../harness/certs.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import {
  checkOrder,
  Producer,
  recordArrivals,
  waitFor,
  type Recorder,
} from '../harness/mqtt-peers.ts';
import { startUplinkProcess } from '../harness/uplink-process.ts';
import { scratchDir } from '../harness/workdir.ts';
import { corruptMarker, mountTmpfs, Scratch } from '../unit/spool/helpers.ts';
import { MAX_PROPERTIES_BYTES } from '../../src/spool/index.ts';

const CLOUD_FILTER = 'edgebridge/c1/node-1/#';
const DATA_RULE = { filter: 'edgebridge/v1/+/+/data/#' };
/** A cloud broker that takes many QoS 1 messages in flight (mosquitto advertises 20 by default). */
const CLOUD_CONFIG = ['max_inflight_messages 1000', 'max_queued_messages 0'];

/** Log lines of an in-process uplink, for "logged once" checks. */
function captureLog(): { log: pino.Logger; lines: { msg: string; level: number }[] } {
  const lines: { msg: string; level: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line !== '') lines.push(JSON.parse(line) as { msg: string; level: number });
      }
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

describe('uplink to a real cloud broker', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const scratch = new Scratch();
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    scratch.removeAll();
  });

  async function broker(
    name: string,
    extra: Parameters<typeof startMosquitto>[0] = { name },
  ): Promise<Mosquitto> {
    const b = await startMosquitto({
      ...extra,
      name,
      extraConfig: [...CLOUD_CONFIG, ...(extra.extraConfig ?? [])],
    });
    cleanups.push(() => b.stop());
    return b;
  }

  async function recorder(url: string, options: mqtt.IClientOptions = {}): Promise<Recorder> {
    const r = await recordArrivals(url, CLOUD_FILTER, options);
    cleanups.push(() => r.close());
    return r;
  }

  async function producer(url: string): Promise<Producer> {
    const p = await Producer.connect(url);
    cleanups.push(() => p.close());
    return p;
  }

  async function uplink(
    doc: Record<string, unknown>,
    log = captureLog().log,
  ): Promise<RunningUplink> {
    const stateDir = scratchDir('uplink-state');
    const running = await startUplink(
      uplinkConfigFrom(
        { cluster: 'c1', discoveries: false, topics: [DATA_RULE], ...doc },
        stateDir,
      ),
      {
        node: 'node-1',
        log,
        backoff: { initialMs: 100, capMs: 500 },
      },
    );
    cleanups.push(() => running.close());
    if (running.stats().source !== undefined) {
      await waitFor(
        'the uplink to subscribe on the node broker',
        () => running.stats().source?.subscribed === true,
      );
    }
    return running;
  }

  it('cloud broker stopped and restarted: every message arrives, in order per device, replays marked historical', async () => {
    const node = await broker('node-outage');
    const cloud = await broker('cloud-outage');
    const rec = await recorder(cloud.url);
    const running = await uplink({ cloud: { url: cloud.url }, nodeBroker: { url: node.url } });
    const prod = await producer(node.url);
    const devices = ['dev-a', 'dev-b', 'dev-c'];
    const total = 600;
    const publishSome = async (from: number, to: number): Promise<void> => {
      for (let n = from; n < to; n++) {
        await Promise.all(devices.map((d) => prod.publish(d, n)));
      }
    };
    await publishSome(0, total / 3);
    await waitFor(
      'the first third at the cloud',
      () => rec.distinct.size >= devices.length * (total / 3),
    );
    await cloud.stop();
    await publishSome(total / 3, (2 * total) / 3);
    await sleep(300);
    await cloud.start();
    await publishSome((2 * total) / 3, total);
    await waitFor(
      'every acknowledged message at the cloud',
      () => [...prod.acked].every((k) => rec.distinct.has(k)),
      60_000,
      () => `${rec.distinct.size} of ${prod.acked.size}`,
    );
    assert.equal(prod.acked.size, devices.length * total);
    const { duplicates, outOfOrder } = checkOrder(rec.arrivals);
    assert.deepEqual(outOfOrder, []);
    // Messages stored while the cloud was down went up after it came back: marked historical.
    assert.ok(
      rec.arrivals.some((a) => a.historical),
      'no message marked historical',
    );
    assert.ok(
      rec.arrivals.every(
        (a) =>
          a.id !== undefined && a.topic.startsWith('edgebridge/c1/node-1/edgebridge/v1/default/'),
      ),
    );
    await waitFor('the last PUBACKs to empty the spool', () => running.stats().spool.depth === 0);
    const stats = running.stats();
    assert.ok(stats.sender.connects >= 2, `connects ${stats.sender.connects}`);
    // At-least-once: what a lost connection left unacknowledged may come twice, no more.
    assert.ok(
      duplicates <= stats.sender.resent,
      `${duplicates} duplicates, ${stats.sender.resent} resent`,
    );
  });

  it('uplink SIGKILLed at random moments: nothing acknowledged is lost, duplicates bounded', async () => {
    const node = await broker('node-kill');
    const cloud = await broker('cloud-kill');
    const rec = await recorder(cloud.url);
    const stateDir = scratchDir('uplink-kill');
    mkdirSync(stateDir, { recursive: true });
    const config = {
      cluster: 'c1',
      discoveries: false,
      topics: [DATA_RULE],
      cloud: { url: cloud.url },
      nodeBroker: { url: node.url },
    };
    const logFile = path.join(stateDir, 'uplink.log');
    let child = await startUplinkProcess({ config, stateDir, logFile });
    cleanups.push(() => child.kill());
    const prod = await producer(node.url);
    const devices = ['dev-a', 'dev-b', 'dev-c', 'dev-d'];
    let producing = true;
    const production = (async () => {
      for (let n = 0; producing; n++) {
        await Promise.all(devices.map((d) => prod.publish(d, n)));
      }
    })();
    const kills = 6;
    for (let k = 0; k < kills; k++) {
      await sleep(300 + Math.floor(Math.random() * 700));
      await child.kill();
      await sleep(Math.floor(Math.random() * 300));
      child = await startUplinkProcess({ config, stateDir, logFile });
    }
    producing = false;
    await production;
    await waitFor(
      'every acknowledged message at the cloud',
      () => [...prod.acked].every((k) => rec.distinct.has(k)),
      120_000,
      () =>
        `${[...prod.acked].filter((k) => !rec.distinct.has(k)).length} of ${prod.acked.size} missing`,
    );
    const { duplicates, outOfOrder } = checkOrder(rec.arrivals);
    assert.deepEqual(outOfOrder, []);
    // Each kill can repeat at most what was in flight: the node broker's window
    // to us (2000) plus ours to the cloud (1000).
    assert.ok(duplicates <= kills * 3000, `${duplicates} duplicates after ${kills} kills`);
    const last = child;
    let depth = -1;
    for (let i = 0; i < 100 && depth !== 0; i++) {
      depth = (await last.stats()).spool.depth;
      if (depth !== 0) await sleep(100);
    }
    assert.equal(depth, 0);
    await child.stop();
    process.stdout.write(
      `# ${prod.acked.size} acknowledged, ${kills} kills, ${duplicates} duplicates\n`,
    );
  });

  for (const onFull of ['block', 'drop-oldest'] as const) {
    it(`full spool under ${onFull}: ${onFull === 'block' ? 'producers wait, nothing is lost' : 'oldest dropped, counted, logged once'}`, async () => {
      const cloud = await broker(`cloud-full-${onFull}`);
      // Subscribed (persistent session) before the outage, so that nothing sent later is missed.
      const rec = await recorder(cloud.url);
      await cloud.stop();
      const { log, lines } = captureLog();
      const running = await uplink(
        { cloud: { url: cloud.url }, spool: { maxBytes: 20_000, onFull } },
        log,
      );
      const total = 400; // about 140 bytes each: twice and more what fits
      const settled: ('stored' | 'refused')[] = [];
      const accepts = Array.from({ length: total }, (_, n) =>
        running.uplink
          .accept({ topic: 'edgebridge/v1/default/dev-a/data', payload: Buffer.from(`dev-a:${n}`) })
          .then(
            () => settled.push('stored'),
            () => settled.push('refused'),
          ),
      );
      await sleep(300);
      if (onFull === 'block') {
        // Producers beyond the bound wait: not stored, not refused, not dropped.
        assert.ok(settled.length < total, `all ${settled.length} settled`);
        assert.ok(running.stats().spool.blockedProducers > 0);
      } else {
        assert.equal(settled.length, total);
      }
      await cloud.start();
      await Promise.all(accepts);
      assert.ok(settled.every((s) => s === 'stored'));
      const stats = running.stats();
      if (onFull === 'block') {
        await waitFor(
          'all messages at the cloud',
          () => rec.distinct.size === total,
          60_000,
          () => `${rec.distinct.size}`,
        );
        assert.equal(running.stats().spool.dropped, 0);
      } else {
        assert.ok(stats.spool.dropped > 0);
        await waitFor('the spool to drain', () => running.stats().spool.depth === 0);
        await waitFor(
          'the kept messages at the cloud',
          () => rec.distinct.size === total - stats.spool.dropped,
          30_000,
          () => `${rec.distinct.size}`,
        );
        // The newest were kept.
        assert.ok(rec.distinct.has(`dev-a:${total - 1}`));
        assert.ok(!rec.distinct.has('dev-a:0'));
        assert.equal(lines.filter((l) => /dropping the oldest/.test(l.msg)).length, 1);
      }
      assert.deepEqual(checkOrder(rec.arrivals).outOfOrder, []);
    });
  }

  it('full disk: one clear error, local publishing goes on, nothing acknowledged is lost, recovery once space frees', async () => {
    const tmpfs = mountTmpfs(scratch, 2 * 1024 * 1024);
    cleanups.push(() => tmpfs.unmount());
    const node = await broker('node-disk');
    const cloud = await broker('cloud-disk');
    const rec = await recorder(cloud.url);
    await cloud.stop();
    const { log, lines } = captureLog();
    const running = await uplink(
      {
        cloud: { url: cloud.url },
        nodeBroker: { url: node.url },
        spool: { dir: path.join(tmpfs.dir, 'spool'), maxBytes: '64Mi' },
      },
      log,
    );
    const prod = await producer(node.url);
    // A local consumer of a device topic that does not go up.
    const local = await mqtt.connectAsync(node.url, { reconnectPeriod: 0 });
    cleanups.push(() => local.endAsync(true));
    const localGot: string[] = [];
    local.on('message', (_t, p) => localGot.push(p.toString()));
    await local.subscribeAsync('edgebridge/v1/default/dev-a/state', { qos: 1 });

    const total = 3000; // 1 KiB each: more than the 2 MiB disk holds
    for (let n = 0; n < total; n += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => prod.publish('dev-a', n + i, 1024)));
    }
    await waitFor('the spool to refuse', () => running.stats().uplink.refused > 0, 30_000);
    const refusals = lines.filter((l) => /spool refuses/.test(l.msg));
    assert.equal(refusals.length, 1, 'one clear error while the disk is full');
    assert.match(JSON.stringify(refusals[0]), /EDGEBRIDGE_SPOOL_DISK_FULL/);
    // The node broker and the agent keep serving local consumers.
    const pub = await mqtt.connectAsync(node.url, { reconnectPeriod: 0 });
    await pub.publishAsync('edgebridge/v1/default/dev-a/state', 'online', { qos: 1 });
    await pub.endAsync();
    await waitFor('the local consumer to get its message', () => localGot.includes('online'));
    // Space frees as the cloud takes the backlog.
    await cloud.start();
    await waitFor(
      'every acknowledged message at the cloud',
      () => [...prod.acked].every((k) => rec.distinct.has(k)),
      120_000,
      () => `${[...prod.acked].filter((k) => !rec.distinct.has(k)).length} missing`,
    );
    assert.equal(prod.acked.size, total);
    assert.deepEqual(checkOrder(rec.arrivals).outOfOrder, []);
  });

  it('corrupt bytes in the spool file: skipped, counted and reported; the rest delivered', async () => {
    const cloud = await broker('cloud-corrupt');
    const rec = await recorder(cloud.url);
    await cloud.stop();
    const stateDir = scratchDir('uplink-corrupt');
    const doc = {
      cluster: 'c1',
      discoveries: false,
      topics: [DATA_RULE],
      cloud: { url: cloud.url },
      spool: { dir: 'spool' },
    };
    const first = await startUplink(uplinkConfigFrom(doc, stateDir), {
      node: 'node-1',
      log: captureLog().log,
    });
    const marker = '<<< this payload is damaged on disk >>>';
    for (let n = 0; n < 20; n++) {
      const payload = n === 7 ? marker : `dev-a:${n}`;
      await first.uplink.accept({
        topic: 'edgebridge/v1/default/dev-a/data',
        payload: Buffer.from(payload),
      });
    }
    await first.close();
    assert.ok(corruptMarker(path.join(stateDir, 'spool'), Buffer.from(marker)) >= 1);
    await cloud.start();
    const { log, lines } = captureLog();
    const second = await startUplink(uplinkConfigFrom(doc, stateDir), {
      node: 'node-1',
      log,
      backoff: { initialMs: 100, capMs: 500 },
    });
    cleanups.push(() => second.close());
    await waitFor(
      'the 19 intact messages at the cloud',
      () => rec.distinct.size === 19,
      30_000,
      () => `${rec.distinct.size}`,
    );
    assert.equal(second.stats().spool.corrupt, 1);
    assert.ok(lines.some((l) => /corrupt/.test(l.msg)));
    assert.ok(!rec.distinct.has(marker));
    assert.deepEqual(checkOrder(rec.arrivals).outOfOrder, []);
  });

  it('TLS with a CA and a client certificate; an unreadable CA is a terminal configuration error', async () => {
    const dir = scratchDir('mqtt-tls');
    const certs = await makeMqttTlsCerts(dir);
    const cloud = await broker('cloud-tls', {
      name: 'cloud-tls',
      tls: { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey, requireCertificate: true },
    });
    assert.match(cloud.url, /^mqtts:/);
    const tls = {
      ca: { file: certs.ca },
      cert: { file: certs.clientCert },
      key: { file: certs.clientKey },
    };
    const rec = await recorder(cloud.url, {
      ca: readFileSync(certs.ca),
      cert: readFileSync(certs.clientCert),
      key: readFileSync(certs.clientKey),
    });
    const running = await uplink({ cloud: { url: cloud.url, tls } });
    for (let n = 0; n < 50; n++) {
      await running.uplink.accept({
        topic: 'edgebridge/v1/default/dev-t/data',
        payload: Buffer.from(`dev-t:${n}`),
      });
    }
    await waitFor('50 messages over TLS', () => rec.distinct.size === 50, 30_000);
    assert.equal(running.stats().sender.connected, true);

    const bad = await uplink({
      cloud: { url: cloud.url, tls: { ...tls, ca: { file: path.join(dir, 'missing-ca.crt') } } },
    });
    await assert.rejects(bad.done, (err: unknown) => {
      assert.ok(err instanceof UplinkConfigError);
      assert.equal(err.code, 'EDGEBRIDGE_UPLINK_CONFIG');
      assert.match(err.message, /cloud\.tls\.ca: cannot read/);
      return true;
    });
    // Still storing: the messages wait for a fixed configuration.
    await bad.uplink.accept({
      topic: 'edgebridge/v1/default/dev-t/data',
      payload: Buffer.from('kept'),
    });
    assert.equal(bad.stats().spool.depth, 1);
  });

  it('bad configuration is one clear error naming the field', () => {
    assert.throws(
      () => uplinkConfigFrom({ cluster: 'c1', cloud: { url: 'http://x' } }, '/tmp'),
      /cloud\.url: scheme http:/,
    );
    assert.throws(
      () =>
        uplinkConfigFrom(
          { cluster: 'c1', cloud: { url: 'mqtt://h' }, topics: [{ filter: 'a/#/b' }] },
          '/tmp',
        ),
      /topics\[0\]\.filter/,
    );
    assert.throws(
      () =>
        uplinkConfigFrom(
          { cluster: 'c1', cloud: { url: 'mqtt://h' }, spool: { onFull: 'later' } },
          '/tmp',
        ),
      /spool\.onFull/,
    );
    assert.throws(
      () => uplinkConfigFrom({ cluster: 'c1', cloud: { url: 'mqtt://u:secret@h' } }, '/tmp'),
      (err: unknown) => {
        assert.ok(err instanceof UplinkConfigError);
        assert.doesNotMatch(err.message, /:secret@/);
        return true;
      },
    );
  });

  it('downlink: cloud commands reach the device command topic on the node broker; bad ones are dropped and counted', async () => {
    const node = await broker('node-downlink');
    const cloud = await broker('cloud-downlink');
    const running = await uplink({
      cloud: { url: cloud.url },
      nodeBroker: { url: node.url },
      downlink: { enabled: true },
    });
    const device = await mqtt.connectAsync(node.url, { reconnectPeriod: 0 });
    cleanups.push(() => device.endAsync(true));
    const got: { topic: string; payload: string }[] = [];
    device.on('message', (topic, p) => got.push({ topic, payload: p.toString() }));
    await device.subscribeAsync('edgebridge/v1/+/+/commands/#', { qos: 1 });
    await waitFor('the uplink to connect', () => running.stats().sender.connected);
    const ops = await mqtt.connectAsync(cloud.url, { protocolVersion: 5, reconnectPeriod: 0 });
    cleanups.push(() => ops.endAsync(true));
    await ops.publishAsync('edgebridge/c1/node-1/commands/default/dev-a/reboot', 'now', { qos: 1 });
    await ops.publishAsync('edgebridge/c1/node-1/commands/Not_A_Namespace/dev-a/reboot', 'x', {
      qos: 1,
    });
    await ops.publishAsync(
      'edgebridge/c1/node-1/commands/default/dev-a/big',
      Buffer.alloc(70_000),
      { qos: 1 },
    );
    await ops.publishAsync('edgebridge/c1/node-1/commands/default/dev-b/set/rate', '5', { qos: 1 });
    await waitFor(
      'two commands forwarded',
      () => running.stats().downlink.forwarded === 2 && running.stats().downlink.rejected === 2,
      10_000,
      () => JSON.stringify(running.stats().downlink),
    );
    await waitFor('the device to get both', () => got.length === 2);
    assert.deepEqual(got, [
      { topic: 'edgebridge/v1/default/dev-a/commands/reboot', payload: 'now' },
      { topic: 'edgebridge/v1/default/dev-b/commands/set/rate', payload: '5' },
    ]);
  });

  it('a message over the cloud broker Maximum Packet Size, or whose cloud topic MQTT cannot carry, is dropped and counted; the rest go on, in order', async () => {
    const cloud = await broker('cloud-max-packet', {
      name: 'cloud-max-packet',
      extraConfig: ['max_packet_size 2000'],
    });
    const rec = await recorder(cloud.url);
    const running = await uplink({ cloud: { url: cloud.url } });
    const topic = 'edgebridge/v1/default/dev-a/data';
    await running.uplink.accept({ topic, payload: Buffer.from('first') });
    await running.uplink.accept({ topic, payload: Buffer.from('x'.repeat(5000)) });
    // A topic a node broker could take (65,535 bytes), too long once the cloud prefix is added.
    const longTopic = `${topic}/${'s'.repeat(65_535 - topic.length - 1)}`;
    await running.uplink.accept({ topic: longTopic, payload: Buffer.from('long topic') });
    await running.uplink.accept({ topic, payload: Buffer.from('last') });
    await waitFor(
      'the two small messages to arrive',
      () => rec.arrivals.length === 2 && running.stats().sender.rejected === 2,
      10_000,
      () => JSON.stringify(running.stats().sender),
    );
    assert.deepEqual(
      rec.arrivals.map((a) => a.payload),
      ['first', 'last'],
    );
    assert.equal(running.stats().spool.depth, 0);
  });

  it("a node broker publish's MQTT 5 user properties and content type reach the cloud; a client's edgebridge-* ones do not", async () => {
    const node = await broker('node-props');
    const cloud = await broker('cloud-props');
    const running = await uplink({ cloud: { url: cloud.url }, nodeBroker: { url: node.url } });
    const sub = await mqtt.connectAsync(cloud.url, { protocolVersion: 5, reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync(true));
    const got: mqtt.IPublishPacket[] = [];
    sub.on('message', (_topic, _payload, packet) => got.push(packet));
    await sub.subscribeAsync(CLOUD_FILTER, { qos: 1 });
    const pub = await mqtt.connectAsync(node.url, { protocolVersion: 5, reconnectPeriod: 0 });
    cleanups.push(() => pub.endAsync(true));
    await pub.publishAsync('edgebridge/v1/default/dev-a/data', '{"t":21.5}', {
      qos: 1,
      properties: {
        userProperties: { unit: ['C', 'K'], 'edgebridge-id': 'forged' },
        contentType: 'application/json',
      },
    });
    await waitFor('the message at the cloud', () => got.length === 1);
    const props = got[0]?.properties;
    assert.equal(props?.contentType, 'application/json');
    const user = props?.userProperties ?? {};
    assert.deepEqual(user.unit, ['C', 'K']);
    assert.notEqual(user['edgebridge-id'], 'forged');
    assert.equal(typeof user['edgebridge-timestamp'], 'string');
    assert.equal(running.stats().spool.depth, 0);
  });

  it('a message whose MQTT 5 properties are past what the spool keeps goes up without them, logged once', async () => {
    const cloud = await broker('cloud-props-cap');
    const rec = await recorder(cloud.url);
    const { log, lines } = captureLog();
    const running = await uplink({ cloud: { url: cloud.url } }, log);
    const topic = 'edgebridge/v1/default/dev-a/data';
    const big: [string, string][] = [['blob', 'x'.repeat(MAX_PROPERTIES_BYTES)]];
    await running.uplink.accept({ topic, payload: Buffer.from('big 1'), userProperties: big });
    await running.uplink.accept({ topic, payload: Buffer.from('big 2'), userProperties: big });
    await running.uplink.accept({
      topic,
      payload: Buffer.from('small'),
      contentType: 'text/plain',
    });
    await waitFor('three arrivals', () => rec.arrivals.length === 3);
    assert.deepEqual(
      rec.arrivals.map((a) => a.payload),
      ['big 1', 'big 2', 'small'],
    );
    assert.equal(lines.filter((l) => /properties too large/.test(l.msg)).length, 1);
  });

  it('accept() rejects with a coded UplinkRefusedError when the spool refuses, and resolves at once for topics that stay local', async () => {
    const cloud = await broker('cloud-refuse');
    const running = await uplink({ cloud: { url: cloud.url }, spool: { maxBytes: 100 } });
    await running.uplink.accept({
      topic: 'edgebridge/v1/default/dev-a/state',
      payload: Buffer.from('online'),
    });
    assert.equal(running.stats().uplink.skipped, 1);
    await assert.rejects(
      running.uplink.accept({
        topic: 'edgebridge/v1/default/dev-a/data',
        payload: Buffer.alloc(500),
      }),
      (err: unknown) =>
        err instanceof UplinkRefusedError &&
        err.code === 'EDGEBRIDGE_UPLINK_REFUSED' &&
        err.spoolCode === 'EDGEBRIDGE_SPOOL_MESSAGE_TOO_LARGE',
    );
  });
});
