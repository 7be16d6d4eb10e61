// The SOAP half of the onvif handler against the camera peer's SOAP side, run
// as its own process on loopback (no WS-Discovery here, so no namespace).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import type { DiscoveredDevice } from '../../discovery-handlers/handler.ts';
import type { CameraRecord } from '../../discovery-handlers/onvif/camera-table.ts';
import { CameraSessions } from '../../discovery-handlers/onvif/camera-sessions.ts';
import { credentialsBook } from '../../discovery-handlers/onvif/credentials.ts';
import { describeCamera } from '../../discovery-handlers/onvif/describe.ts';
import { soapCall } from '../../discovery-handlers/onvif/soap-client.ts';
import type { SoapCameraSpec } from './fixtures/onvif-camera/soap-camera.ts';

const PEER = path.join(import.meta.dirname, 'fixtures', 'onvif-camera', 'soap-main.ts');
const PASSWORD = 'pw-Zebra-7781';
const OTHER_PASSWORD = 'pw-Quokka-4410';
const uuid = (n: number): string => `c0ffee00-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

const cameras: SoapCameraSpec[] = [
  { uuid: uuid(1), username: 'admin', password: PASSWORD },
  { uuid: uuid(2), username: 'admin', password: OTHER_PASSWORD, digest: true },
  { uuid: uuid(3), username: 'viewer', password: OTHER_PASSWORD },
  { uuid: uuid(4), mode: 'hang' },
  { uuid: uuid(5), mode: 'slow' },
  { uuid: uuid(6), mode: 'huge' },
  { uuid: uuid(7), mode: 'entities' },
];

let peer: ChildProcess | undefined;
let origin = '';

before(async () => {
  peer = spawn(process.execPath, [PEER, JSON.stringify({ host: '127.0.0.1', cameras })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (peer.stdout === null) throw new Error('no stdout');
  const lines = createInterface({ input: peer.stdout });
  const [first] = (await Promise.race([
    once(lines, 'line'),
    once(peer, 'exit').then(() => {
      throw new Error('the camera peer exited before it was ready');
    }),
  ])) as [string];
  origin = `http://127.0.0.1:${(JSON.parse(first) as { port: number }).port}`;
});

after(async () => {
  if (peer?.pid !== undefined && peer.exitCode === null) {
    process.kill(peer.pid, 'SIGTERM');
    await once(peer, 'exit');
  }
});

const deviceUrl = (n: number): string => `${origin}/onvif/${uuid(n)}/device_service`;

async function stats(): Promise<
  Record<
    string,
    {
      requests: number;
      authFailures: number;
      operations: string[];
      subscriptions: number;
      unsubscribes: number;
      pulls: number;
    }
  >
> {
  const r = await fetch(`${origin}/control/stats`);
  return (await r.json()) as Awaited<ReturnType<typeof stats>>;
}

async function cameraStats(n: number): Promise<Awaited<ReturnType<typeof stats>>[string]> {
  const s = (await stats())[uuid(n)];
  if (s === undefined) throw new Error(`the peer has no camera ${n}`);
  return s;
}

async function control(n: number, what: string): Promise<void> {
  const r = await fetch(`${origin}/control/${uuid(n)}/${what}`, { method: 'POST' });
  assert.equal(r.status, 200);
}

function record(n: number): CameraRecord {
  const serviceUrl = new URL(deviceUrl(n));
  return {
    endpoint: `urn:uuid:${uuid(n)}`,
    uuid: uuid(n),
    types: ['dn:NetworkVideoTransmitter'],
    scopes: [],
    xaddrs: [serviceUrl.href],
    serviceUrl,
    otherXaddrs: [],
    from: '127.0.0.1',
    lastSeen: 0,
  };
}

/** A logger whose lines (parsed) land in `lines`. */
function capture(): { log: pino.Logger; lines: Record<string, unknown>[]; raw: string[] } {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = pino(
    { level: 'debug' },
    {
      write(s: string) {
        raw.push(s);
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  return { log, lines, raw };
}

async function until<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('describing a camera over SOAP', () => {
  it('with WS-Security credentials: identity, MAC, stream and snapshot URIs, userinfo stripped', async () => {
    const d = await describeCamera({
      url: deviceUrl(1),
      credentials: { username: 'admin', password: PASSWORD },
      signal: AbortSignal.timeout(15_000),
    });
    assert.equal(d.properties.ONVIF_MANUFACTURER, 'Edge & Bridge Cams');
    assert.equal(d.properties.ONVIF_MODEL, 'EB-CAM 2000/X');
    assert.equal(d.properties.ONVIF_FIRMWARE, '1.2.3');
    assert.equal(d.properties.ONVIF_SERIAL, 'SN-000001');
    assert.equal(d.properties.ONVIF_DEVICE_MAC_ADDRESS, '02:00:5e:10:00:01');
    // The peer puts admin:<password>@ in its stream URI, as some cameras do.
    assert.equal(d.properties.ONVIF_STREAM_URI_PROFILE_1, 'rtsp://127.0.0.1:554/stream/profile_1');
    assert.equal(
      d.properties.ONVIF_STREAM_URI_PROFILE_2_SUB,
      'rtsp://127.0.0.1:554/stream/profile-2.sub',
    );
    assert.equal(
      d.properties.ONVIF_SNAPSHOT_URI_PROFILE_1,
      'http://127.0.0.1/snapshot/profile_1.jpg?user=admin&pwd=REDACTED',
    );
    assert.deepEqual(d.labels, {
      'onvif.edgebridge.io/manufacturer': 'Edge---Bridge-Cams',
      'onvif.edgebridge.io/model': 'EB-CAM-2000-X',
    });
    assert.ok(!JSON.stringify(d).includes(PASSWORD));
  });

  it('with HTTP digest where the camera answers 401', async () => {
    const d = await describeCamera({
      url: deviceUrl(2),
      credentials: { username: 'admin', password: OTHER_PASSWORD },
      signal: AbortSignal.timeout(15_000),
    });
    assert.equal(d.properties.ONVIF_SERIAL, 'SN-000002');
    assert.ok(d.properties.ONVIF_STREAM_URI_PROFILE_1?.startsWith('rtsp://127.0.0.1:554/'));
  });

  for (const [n, how] of [
    [1, 'WS-Security'],
    [2, 'HTTP digest'],
  ] as const) {
    it(`refuses wrong credentials (${how}) with an OnvifAuthError that holds no password`, async () => {
      await assert.rejects(
        describeCamera({
          url: deviceUrl(n),
          credentials: { username: 'admin', password: 'wrong-Walrus-1' },
          signal: AbortSignal.timeout(15_000),
        }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'EDGEBRIDGE_ONVIF_AUTH');
          assert.ok(!`${err.message}${err.stack}`.includes('Walrus'));
          return true;
        },
      );
    });
  }
});

describe('hostile cameras', () => {
  const cases = [
    [4, 'hang', 'EDGEBRIDGE_ONVIF_TIMEOUT'],
    [5, 'slow', 'EDGEBRIDGE_ONVIF_TIMEOUT'],
    [6, 'huge', 'EDGEBRIDGE_ONVIF_TOO_LARGE'],
    [7, 'entities', 'EDGEBRIDGE_ONVIF_BAD_ANSWER'],
  ] as const;
  for (const [n, mode, code] of cases) {
    it(`a camera that answers ${mode} ends in ${code}, memory bounded`, async () => {
      const heap = process.memoryUsage().heapUsed;
      await assert.rejects(
        soapCall({
          url: deviceUrl(n),
          action: 'http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation',
          body: '<GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/>',
          credentials: { username: 'admin', password: PASSWORD },
          signal: AbortSignal.timeout(30_000),
          timeoutMs: 1500,
        }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, code);
          return true;
        },
      );
      // The 1 MB cap: a huge answer never sits in memory whole.
      assert.ok(process.memoryUsage().heapUsed - heap < 32 * 1024 * 1024);
    });
  }

  it('the caller’s AbortSignal ends a hanging call with its reason', async () => {
    const reason = new Error('discovery changed');
    const controller = new AbortController();
    const call = soapCall({
      url: deviceUrl(4),
      action: 'x',
      body: '<x/>',
      signal: controller.signal,
      timeoutMs: 60_000,
    });
    setTimeout(() => controller.abort(reason), 200);
    await assert.rejects(call, (err) => err === reason);
  });
});

describe('camera sessions', () => {
  it('per-UUID credentials, refused ones marked ONVIF_AUTH=failed and not retried in a loop, one log line, no password anywhere', async () => {
    const { log, lines, raw } = capture();
    const abort = new AbortController();
    const events: { id: string; event: Record<string, unknown> }[] = [];
    const states: string[] = [];
    let changes = 0;
    const sessions = new CameraSessions({
      signal: abort.signal,
      log,
      publish: {
        data: () => undefined,
        state: (id, s) => states.push(`${id} ${s}`),
        event: (id, event) => events.push({ id, event }),
      },
      // Camera 3's own entry is wrong; camera 1 has its own right one; the default is wrong for both.
      credentials: credentialsBook({
        ONVIF_USERNAME: 'admin',
        ONVIF_PASSWORD: 'default-Wrong-9',
        ONVIF_CREDENTIALS: JSON.stringify({
          [uuid(1)]: { username: 'admin', password: PASSWORD },
          [`urn:uuid:${uuid(3)}`]: { username: 'viewer', password: 'stale-Heron-3' },
        }),
      }),
      changed: () => changes++,
      callTimeoutMs: 2000,
    });
    const base = (n: number): DiscoveredDevice => ({
      id: `urn:uuid:${uuid(n)}`,
      properties: { ONVIF_DEVICE_UUID: uuid(n) },
    });
    try {
      sessions.update([record(1), record(3)]);
      const described = await until('camera 1 described', () => {
        const d = sessions.extend(record(1), base(1));
        return d.properties.ONVIF_AUTH === 'ok' ? d : undefined;
      });
      assert.equal(described.properties.ONVIF_SERIAL, 'SN-000001');
      assert.equal(described.properties.ONVIF_DEVICE_UUID, uuid(1));
      const refused = await until('camera 3 refused', () => {
        const d = sessions.extend(record(3), base(3));
        return d.properties.ONVIF_AUTH === 'failed' ? d : undefined;
      });
      assert.deepEqual(refused.properties, { ONVIF_DEVICE_UUID: uuid(3), ONVIF_AUTH: 'failed' });
      assert.ok(changes >= 2);

      // Events: a motion event on the camera reaches publish.event.
      await until('a PullPoint', async () => ((await cameraStats(1)).pulls > 0 ? true : undefined));
      await control(1, 'motion?state=true');
      const motion = await until('the motion event', () =>
        events.find((e) => e.id === `urn:uuid:${uuid(1)}`),
      );
      assert.deepEqual(motion.event, {
        type: 'onvif.notification',
        topic: 'tns1:VideoSource/MotionAlarm',
        source: { Source: 'VideoSource_1' },
        data: { State: 'true' },
        utcTime: motion.event.utcTime,
        propertyOperation: 'Changed',
      });

      // Refused credentials back off for tens of seconds: a few seconds on, no second try.
      const failuresBefore = (await cameraStats(3)).authFailures;
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal((await cameraStats(3)).authFailures, failuresBefore);
      const authLines = lines.filter((l) => l.msg === 'ONVIF camera refused the credentials');
      assert.equal(authLines.length, 1);
      assert.equal(authLines[0]?.code, 'EDGEBRIDGE_ONVIF_AUTH');
    } finally {
      abort.abort(new Error('test over'));
      await sessions.close();
    }
    assert.equal((await cameraStats(1)).unsubscribes, 1, 'Unsubscribe on close');
    for (const text of [...raw, JSON.stringify(events), JSON.stringify(states)])
      for (const secret of [PASSWORD, 'stale-Heron-3', 'default-Wrong-9'])
        assert.ok(!text.includes(secret), `a password in ${text.slice(0, 200)}`);
  });

  it('hostile cameras are retried with backoff and logged once each, and their devices keep only WS-Discovery data', async () => {
    const { log, lines } = capture();
    const abort = new AbortController();
    const hostile = [4, 5, 6, 7];
    const before = await Promise.all(hostile.map(async (n) => (await cameraStats(n)).requests));
    const sessions = new CameraSessions({
      signal: abort.signal,
      log,
      publish: { data: () => undefined, state: () => undefined, event: () => undefined },
      credentials: credentialsBook({}),
      changed: () => undefined,
      callTimeoutMs: 500,
    });
    try {
      sessions.update(hostile.map(record));
      // Each is asked again after its backoff (2 s at first), not at once.
      await until(
        'a second try at every hostile camera',
        async () => {
          const now = await Promise.all(hostile.map(async (n) => (await cameraStats(n)).requests));
          return now.every((r, i) => r - (before[i] ?? 0) >= 2) ? true : undefined;
        },
        30_000,
      );
      const notDescribed = lines.filter((l) => l.msg === 'ONVIF camera not described');
      assert.deepEqual(notDescribed.map((l) => [l.endpoint, l.code]).sort(), [
        [`urn:uuid:${uuid(4)}`, 'EDGEBRIDGE_ONVIF_TIMEOUT'],
        [`urn:uuid:${uuid(5)}`, 'EDGEBRIDGE_ONVIF_TIMEOUT'],
        [`urn:uuid:${uuid(6)}`, 'EDGEBRIDGE_ONVIF_TOO_LARGE'],
        [`urn:uuid:${uuid(7)}`, 'EDGEBRIDGE_ONVIF_BAD_ANSWER'],
      ]);
      const device = { id: `urn:uuid:${uuid(6)}`, properties: { ONVIF_DEVICE_UUID: uuid(6) } };
      assert.deepEqual(sessions.extend(record(6), device), device);
    } finally {
      abort.abort(new Error('test over'));
      await sessions.close();
    }
  });

  it('a camera that stops answering goes offline and back online, one log line per kind', async () => {
    const { log, lines } = capture();
    const abort = new AbortController();
    const states: string[] = [];
    const sessions = new CameraSessions({
      signal: abort.signal,
      log,
      publish: { data: () => undefined, state: (_id, s) => states.push(s), event: () => undefined },
      credentials: credentialsBook({ ONVIF_USERNAME: 'admin', ONVIF_PASSWORD: PASSWORD }),
      changed: () => undefined,
      callTimeoutMs: 1000,
    });
    try {
      const subscribed = (await cameraStats(1)).subscriptions;
      sessions.update([record(1)]);
      await until('a PullPoint', async () =>
        (await cameraStats(1)).subscriptions > subscribed ? true : undefined,
      );
      await control(1, 'mode?mode=hang');
      await until('offline', () => (states.includes('offline') ? true : undefined), 30_000);
      await control(1, 'mode?mode=normal');
      await until('online again', () => (states.at(-1) === 'online' ? true : undefined), 90_000);
      assert.deepEqual(states, ['offline', 'online']);
      assert.equal(lines.filter((l) => l.msg === 'ONVIF PullPoint failed').length, 1);
    } finally {
      abort.abort(new Error('test over'));
      await sessions.close();
    }
  });
});
