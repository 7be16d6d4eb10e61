import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CameraTable } from '../../discovery-handlers/onvif/camera-table.ts';
import { parseOnvifDetails } from '../../discovery-handlers/onvif/details.ts';
import { cameraFilter } from '../../discovery-handlers/onvif/filter.ts';
import { expandTargets } from '../../discovery-handlers/onvif/ipv4.ts';
import { readNeighbours } from '../../discovery-handlers/onvif/neighbours.ts';
import { MAX_SCOPES_VALUE, toDevice } from '../../discovery-handlers/onvif/to-device.ts';
import {
  parseWsd,
  probeMessage,
  type WsdEndpoint,
} from '../../discovery-handlers/onvif/wsd-message.ts';
import { InvalidDetailsError } from '../../discovery-handlers/handler.ts';
import {
  bye,
  hello,
  hostileDatagrams,
  mutatedDatagrams,
  probeMatches,
} from '../peers/fixtures/onvif-camera/wsd-messages.ts';

const UUID = '5f5a69c2-e0ae-504f-829b-00fc0b1e5a10';
const cam = {
  uuid: UUID,
  scopes: [
    'onvif://www.onvif.org/name/Hall%20Cam%0A1',
    'onvif://www.onvif.org/hardware/IPC-100',
    'onvif://www.onvif.org/location/hall',
  ],
  xaddrs: [
    'http://[fe80::1]/onvif/device_service',
    'http://admin:secret@10.0.0.5:8080/onvif/device_service',
    'http://cam.local/onvif/device_service',
  ],
};

/** The hostile datagram at `index` (see wsd-messages.ts for the order). */
function hostile(index: number): Buffer {
  const d = hostileDatagrams('10.0.0.5')[index];
  assert.ok(d !== undefined);
  return d;
}

function endpointOf(xml: string): WsdEndpoint {
  const r = parseWsd(xml);
  assert.ok(r.ok && r.message.kind === 'hello', JSON.stringify(r));
  return r.message.endpoint;
}

describe('WS-Discovery messages', () => {
  it('reads a ProbeMatches with its RelatesTo, types, scopes and XAddrs', () => {
    const r = parseWsd(probeMatches(cam, '10.0.0.5', 'urn:uuid:probe-1'));
    assert.ok(r.ok && r.message.kind === 'probe-matches');
    assert.equal(r.message.relatesTo, 'urn:uuid:probe-1');
    assert.deepEqual(r.message.matches, [
      {
        address: `urn:uuid:${UUID}`,
        types: ['dn:NetworkVideoTransmitter', 'tds:Device'],
        scopes: cam.scopes,
        xaddrs: cam.xaddrs,
        metadataVersion: 1,
      },
    ]);
  });

  it('reads Hello, Bye and our own Probe, whatever the namespace prefixes, on one line', () => {
    assert.equal(endpointOf(hello(cam, '10.0.0.5')).address, `urn:uuid:${UUID}`);
    const b = parseWsd(bye(cam));
    assert.ok(b.ok && b.message.kind === 'bye' && b.message.address === `urn:uuid:${UUID}`);
    const p = parseWsd(probeMessage('urn:uuid:x'));
    assert.ok(p.ok && p.message.kind === 'probe');
    assert.deepEqual(p.message.types, ['dn:NetworkVideoTransmitter']);
    const vendor =
      '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:w="a" xmlns:q="b"><env:Header><w:RelatesTo>urn:uuid:r</w:RelatesTo></env:Header><env:Body><q:ProbeMatches><q:ProbeMatch><w:EndpointReference><w:Address>uuid:ABC</w:Address></w:EndpointReference><q:Types>ns9:NetworkVideoTransmitter</q:Types><q:XAddrs>http://1.2.3.4/a&amp;b</q:XAddrs></q:ProbeMatch></q:ProbeMatches></env:Body></env:Envelope>';
    const v = parseWsd(vendor);
    assert.ok(v.ok && v.message.kind === 'probe-matches');
    assert.deepEqual(v.message.matches[0]?.xaddrs, ['http://1.2.3.4/a&b']);
    assert.deepEqual(v.message.matches[0]?.types, ['ns9:NetworkVideoTransmitter']);
  });

  it('refuses a DTD, random bytes and non-SOAP XML with a reason; an empty ProbeMatches lists nothing', () => {
    assert.deepEqual(parseWsd(hostile(0)), { ok: false, reason: 'a DTD (not allowed in SOAP)' });
    assert.equal(parseWsd(hostile(3)).ok, false);
    assert.equal(parseWsd('<a><b>text</b></a>').ok, false);
    assert.equal(parseWsd(Buffer.alloc(70_000, 0x41)).ok, false);
    const empty = parseWsd(
      '<s:Envelope xmlns:s="x"><s:Body><d:ProbeMatches xmlns:d="y"/></s:Body></s:Envelope>',
    );
    assert.deepEqual(empty, { ok: true, message: { kind: 'probe-matches', matches: [] } });
  });

  it('caps what one datagram can carry', () => {
    const big = hostile(1);
    assert.ok(big.length > 55_000);
    const e = endpointOf(big.toString());
    assert.equal(e.scopes.length, 64);
  });
});

describe('the camera table', () => {
  it('uses the IPv4 XAddr, keeps IPv6 and host-name ones apart, and strips userinfo from every URL', () => {
    const t = new CameraTable();
    assert.deepEqual(t.seen(endpointOf(hello(cam, '10.0.0.5')), '10.0.0.5', 1), {
      ok: true,
      added: true,
    });
    const [d] = t.cameras().map(toDevice);
    assert.deepEqual(d, {
      id: `urn:uuid:${UUID}`,
      properties: {
        ONVIF_DEVICE_SERVICE_URL: 'http://10.0.0.5:8080/onvif/device_service',
        ONVIF_DEVICE_UUID: UUID,
        ONVIF_DEVICE_IP_ADDRESS: '10.0.0.5',
        ONVIF_SCOPES: cam.scopes.join(' '),
        ONVIF_NAME: 'Hall Cam?1',
        ONVIF_HARDWARE: 'IPC-100',
        ONVIF_DEVICE_SERVICE_URLS_IPV6: 'http://[fe80::1]/onvif/device_service',
        ONVIF_DEVICE_SERVICE_URLS_HOSTNAME: 'http://cam.local/onvif/device_service',
      },
    });
    assert.doesNotMatch(JSON.stringify(d), /secret|admin/);
  });

  it('prefers the XAddr on the address the datagram came from', () => {
    const t = new CameraTable();
    t.seen(
      endpointOf(hello({ ...cam, xaddrs: ['http://192.168.9.9/a', 'http://10.0.0.7/b'] }, 'x')),
      '10.0.0.7',
      1,
    );
    assert.equal(t.cameras()[0]?.serviceUrl.href, 'http://10.0.0.7/b');
  });

  it('refuses a WSD computer and a camera without a usable XAddr; a Bye and expiry remove', () => {
    const t = new CameraTable();
    const computer = endpointOf(hello({ ...cam, types: 'pub:Computer' }, '10.0.0.5'));
    assert.deepEqual(t.seen(computer, '10.0.0.5', 1), { ok: false, refusal: 'not-a-camera' });
    for (const xaddrs of [[], ['ftp://10.0.0.5/'], ['http://[fe80::1]/only-v6']]) {
      assert.deepEqual(t.seen(endpointOf(hello({ ...cam, xaddrs }, 'x')), '10.0.0.5', 1), {
        ok: false,
        refusal: 'no-usable-xaddr',
      });
    }
    t.seen(endpointOf(hello(cam, '10.0.0.5')), '10.0.0.5', 100);
    const v = t.version;
    t.seen(endpointOf(hello(cam, '10.0.0.5')), '10.0.0.5', 200);
    assert.equal(t.version, v, 'the same camera seen again is no change');
    assert.equal(t.bye(`uuid:${UUID.toUpperCase()}`), true);
    assert.equal(t.cameras().length, 0);
    t.seen(endpointOf(hello(cam, '10.0.0.5')), '10.0.0.5', 100);
    assert.equal(t.expire(100), 0);
    assert.equal(t.expire(101), 1);
  });

  it('caps ONVIF_SCOPES at whole scopes', () => {
    const t = new CameraTable();
    t.seen(endpointOf(hostile(1).toString()), '10.0.0.5', 1);
    const scopes = t.cameras().map(toDevice)[0]?.properties.ONVIF_SCOPES ?? '';
    assert.ok(scopes.length > 0 && scopes.length <= MAX_SCOPES_VALUE);
    assert.ok(scopes.split(' ').every((s) => s.startsWith('onvif://x/')));
  });
});

describe('onvif details and filters', () => {
  it('fills defaults and expands unicast targets within 1,024 addresses', () => {
    assert.deepEqual(parseOnvifDetails(undefined), { probeTimeoutSeconds: 2, unicastTargets: [] });
    assert.equal(parseOnvifDetails({ unicastTargets: ['10.1.0.0/22'] }).unicastTargets.length, 1);
    assert.deepEqual(expandTargets(['10.0.0.0/30', '10.0.0.1', '10.0.0.9/32'], 1024), [
      '10.0.0.1',
      '10.0.0.2',
      '10.0.0.9',
    ]);
    assert.equal(expandTargets(['10.1.0.0/22'], 1024).length, 1022);
    assert.equal(expandTargets(['0.0.0.0/0'], 1024).length, 1025);
  });

  it('refuses bad details with a message naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [{ unicastTargets: ['10.0.0.0/21'] }, /^details\.unicastTargets: must hold at most 1024/],
      [{ unicastTargets: ['10.0.0.300'] }, /^details\.unicastTargets\[0\]: must be an IPv4/],
      [
        { ipAddresses: { action: 'Keep', items: [] } },
        /^details\.ipAddresses\.action: must be one of/,
      ],
      [{ uuids: { items: ['nope'] } }, /^details\.uuids\.items\[0\]: must be a UUID/],
      [{ macAddresses: { action: 'Include' } }, /^details\.macAddresses\.items: is required/],
      [{ probeTimeoutSeconds: 0 }, /^details\.probeTimeoutSeconds: must be at least 0.1/],
      [{ interfaces: ['eth0; rm'] }, /^details\.interfaces\[0\]: must be a network interface/],
    ];
    for (const [details, message] of cases) {
      assert.throws(
        () => parseOnvifDetails(details),
        (err: unknown) => {
          assert.ok(err instanceof InvalidDetailsError);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });

  it('includes and excludes by IP address, MAC address, scope and UUID', () => {
    const t = new CameraTable();
    t.seen(endpointOf(hello(cam, '10.0.0.5')), '10.0.0.5', 1);
    const [c] = t.cameras();
    assert.ok(c !== undefined);
    const macOf = (ip: string): string | undefined =>
      ip === '10.0.0.5' ? '02:00:00:00:00:05' : undefined;
    const keeps = (d: object): boolean => cameraFilter(parseOnvifDetails(d))(c, macOf);
    assert.equal(keeps({}), true);
    assert.equal(keeps({ ipAddresses: { items: ['10.0.0.5'] } }), true);
    assert.equal(keeps({ ipAddresses: { action: 'Exclude', items: ['10.0.0.5'] } }), false);
    assert.equal(keeps({ macAddresses: { items: ['02-00-00-00-00-05'] } }), true);
    assert.equal(
      keeps({ macAddresses: { action: 'Exclude', items: ['02:00:00:00:00:05'] } }),
      false,
    );
    assert.equal(keeps({ scopes: { items: ['onvif://www.onvif.org/location/hall'] } }), true);
    assert.equal(keeps({ scopes: { items: ['onvif://www.onvif.org/location/yard'] } }), false);
    assert.equal(keeps({ uuids: { items: [`urn:uuid:${UUID.toUpperCase()}`] } }), true);
    assert.equal(keeps({ uuids: { action: 'Exclude', items: [UUID] } }), false);
    const unknownMac = cameraFilter(
      parseOnvifDetails({ macAddresses: { items: ['02:00:00:00:00:05'] } }),
    );
    assert.equal(
      unknownMac(c, () => undefined),
      false,
    );
  });
});

describe('the WS-Discovery parser under fuzzing', () => {
  it('survives 10,000 seeded mutated datagrams: a result every time, bounded output', () => {
    const counts = { ok: 0, refused: 0 };
    for (const d of [...mutatedDatagrams(7, 10_000), ...hostileDatagrams('10.0.0.9')]) {
      const r = parseWsd(d);
      if (!r.ok) {
        counts.refused++;
        assert.ok(r.reason.length <= 200);
        continue;
      }
      counts.ok++;
      const m = r.message;
      const endpoints =
        m.kind === 'probe-matches' ? m.matches : m.kind === 'hello' ? [m.endpoint] : [];
      assert.ok(endpoints.length <= 256);
      for (const e of endpoints) {
        assert.ok(e.address.length <= 1024 && e.scopes.length <= 64 && e.xaddrs.length <= 16);
        const t = new CameraTable();
        const seen = t.seen(e, '10.0.0.9', 1);
        if (seen.ok) assert.doesNotThrow(() => t.cameras().map(toDevice));
      }
    }
    // The mutations must exercise both paths, or the fuzzer tests nothing.
    assert.ok(counts.ok > 1000 && counts.refused > 1000, JSON.stringify(counts));
  });
});

describe('the neighbour table', () => {
  it('maps the complete entries of /proc/net/arp, and is empty when it cannot be read', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'onvif-arp-'));
    const file = path.join(dir, 'arp');
    writeFileSync(
      file,
      [
        'IP address       HW type     Flags       HW address            Mask     Device',
        '10.0.0.5         0x1         0x2         02:AA:bb:cc:dd:05     *        eb0',
        '10.0.0.6         0x1         0x0         00:00:00:00:00:00     *        eb0',
        '',
      ].join('\n'),
    );
    try {
      assert.deepEqual([...(await readNeighbours(file))], [['10.0.0.5', '02:aa:bb:cc:dd:05']]);
      assert.equal((await readNeighbours(path.join(dir, 'missing'))).size, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
