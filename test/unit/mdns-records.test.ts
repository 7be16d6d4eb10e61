import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from 'dns-packet';
import { InvalidDetailsError } from '../../discovery-handlers/handler.ts';
import { parseMdnsDetails } from '../../discovery-handlers/mdns/details.ts';
import { instanceFilter, toDevice, txtPropertyName } from '../../discovery-handlers/mdns/device.ts';
import { DEFAULT_LIMITS, RecordCache } from '../../discovery-handlers/mdns/record-cache.ts';
import { announcement, mutatedPackets, type ServiceSpec } from '../peers/fixtures/mdns-packets.ts';

const cam: ServiceSpec = {
  name: 'Edge Cam 1',
  type: '_http._tcp',
  host: 'cam1.local',
  port: 8089,
  address: '10.0.0.7',
  txt: { path: '/stream', 'model-name': 'eb' },
};

function records(packet: Buffer): unknown[] {
  const p = decode(packet);
  return [...(p.answers ?? []), ...(p.additionals ?? [])];
}

const newCache = (types = ['_http._tcp.local'], maxInstances = 16) =>
  new RecordCache(types, { ...DEFAULT_LIMITS, maxInstances });

describe('the mDNS record cache', () => {
  it('joins PTR, SRV, TXT and A into a device with MDNS_* properties', () => {
    const cache = newCache();
    cache.apply(records(announcement(cam)), 0);
    assert.deepEqual(cache.instances().map(toDevice), [
      {
        id: 'Edge Cam 1._http._tcp.local',
        properties: {
          MDNS_NAME: 'Edge Cam 1',
          MDNS_TYPE: '_http._tcp',
          MDNS_HOST: 'cam1.local',
          MDNS_PORT: '8089',
          MDNS_ADDRESSES: '10.0.0.7',
          MDNS_TXT_PATH: '/stream',
          MDNS_TXT_MODEL_NAME: 'eb',
        },
      },
    ]);
  });

  it('changes its version on a TXT change, not on a refresh with the same data', () => {
    const cache = newCache();
    cache.apply(records(announcement(cam)), 0);
    const v = cache.version;
    cache.apply(records(announcement(cam)), 1000);
    assert.equal(cache.version, v);
    cache.apply(records(announcement({ ...cam, txt: { path: '/other' } })), 2000);
    assert.notEqual(cache.version, v);
    assert.deepEqual(
      cache.instances().map((i) => toDevice(i).properties.MDNS_TXT_PATH),
      ['/other'],
    );
  });

  it('forgets an instance on a goodbye (TTL 0) and when its TTL runs out', () => {
    const cache = newCache();
    cache.apply(records(announcement(cam)), 0);
    cache.apply(
      [{ type: 'PTR', name: '_http._tcp.local', ttl: 0, data: 'Edge Cam 1._http._tcp.local' }],
      10,
    );
    assert.deepEqual(cache.instances(), []);
    assert.equal(cache.size, 0);

    cache.apply(records(announcement({ ...cam, ttl: 10 })), 0);
    assert.equal(cache.instances().length, 1);
    assert.equal(cache.nextExpiry(), 10_000);
    cache.expire(9_999);
    assert.equal(cache.instances().length, 1);
    cache.expire(10_000);
    assert.deepEqual(cache.instances(), []);
  });

  it('asks for missing SRV/TXT and addresses at most once a second, and refreshes at 80% of a TTL', () => {
    const cache = newCache();
    cache.apply(
      [{ type: 'PTR', name: '_http._tcp.local', ttl: 120, data: 'X._http._tcp.local' }],
      0,
    );
    assert.deepEqual(cache.questions(0), [
      { name: 'X._http._tcp.local', type: 'SRV' },
      { name: 'X._http._tcp.local', type: 'TXT' },
    ]);
    assert.deepEqual(cache.questions(500), []);
    cache.apply(records(announcement({ ...cam, name: 'X', ttl: 100 })), 600);
    assert.deepEqual(cache.questions(700), []);
    const due = cache.questions(600 + 80_000);
    assert.deepEqual(
      due.map((q) => q.type),
      ['SRV', 'TXT', 'A'],
    );
    assert.deepEqual(cache.questions(600 + 80_001), []);
  });

  it('keeps only instances of the browsed types, and learns types through the wildcard when browsing all', () => {
    const typed = newCache(['_ipp._tcp.local']);
    typed.apply(records(announcement(cam)), 0);
    assert.equal(typed.size, 0);
    const all = newCache([]);
    const r = all.apply(
      [{ type: 'PTR', name: '_services._dns-sd._udp.local', ttl: 4500, data: '_http._tcp.local' }],
      0,
    );
    assert.deepEqual(r.newTypes, ['_http._tcp.local']);
    all.apply(records(announcement(cam)), 0);
    assert.equal(all.instances().length, 1);
  });

  it('makes room for a real service by forgetting the oldest bare name when full', () => {
    const cache = newCache(['_http._tcp.local'], 3);
    for (let i = 0; i < 5; i += 1)
      cache.apply(
        [{ type: 'PTR', name: '_http._tcp.local', ttl: 120, data: `Bare ${i}._http._tcp.local` }],
        0,
      );
    assert.equal(cache.size, 3);
    const r = cache.apply(records(announcement(cam)), 0);
    assert.equal(r.capped, 0);
    assert.deepEqual(
      cache.instances().map((i) => i.name),
      ['Edge Cam 1'],
    );
  });

  it('caps instances, and counts malformed records instead of throwing', () => {
    const cache = newCache(['_http._tcp.local'], 3);
    let capped = 0;
    for (let i = 0; i < 10; i += 1)
      capped += cache.apply(records(announcement({ ...cam, name: `Cam ${i}` })), 0).capped;
    assert.equal(cache.size, 3);
    assert.equal(capped, 7);
    const r = cache.apply(
      [
        null,
        { type: 'PTR', name: '_http._tcp.local', ttl: 10, data: 42 },
        { type: 'PTR', name: '_http._tcp.local', ttl: 10, data: 'not.an.instance.of.it' },
        { type: 'SRV', name: 'Cam 0._http._tcp.local', ttl: 10, data: { port: 'x' } },
        { type: 'TXT', name: 'Cam 0._http._tcp.local', ttl: 10, data: [{}] },
        { type: 'A', name: 'cam1.local', ttl: -1, data: '1.2.3.4' },
        { type: 'PTR', name: '_http._tcp.local', ttl: 10, data: 'Bell\u0007._http._tcp.local' },
      ],
      0,
    );
    assert.equal(r.malformed, 7);
    // Once the full table has not been refreshed for a while, a new instance displaces the one expiring first.
    const later = cache.apply(records(announcement({ ...cam, name: 'Late' })), 20_000);
    assert.equal(later.capped, 0);
    assert.equal(cache.size, 3);
    assert.ok(cache.instances().some((i) => i.name === 'Late'));
  });

  it('sanitises TXT keys, caps values and the number of TXT properties, and strips control characters', () => {
    assert.equal(txtPropertyName('model-name.v2'), 'MDNS_TXT_MODEL_NAME_V2');
    assert.equal(txtPropertyName('ü'), 'MDNS_TXT__');
    assert.equal(txtPropertyName('k'.repeat(500)).length, 128);
    const txt: Record<string, string> = { bell: 'a\u0007b', big: 'v'.repeat(200) };
    for (let i = 0; i < 100; i += 1) txt[`k${i}`] = String(i);
    const cache = newCache();
    cache.apply(records(announcement({ ...cam, txt })), 0);
    const [device] = cache.instances().map(toDevice);
    assert.equal(device?.properties.MDNS_TXT_BELL, 'a?b');
    assert.equal(Object.keys(device?.properties ?? {}).length, 64);
  });
});

describe('mDNS filters and details', () => {
  const instance = (name: string, txt: [string, string][] = []) => ({
    fqdn: `${name}._http._tcp.local`,
    name,
    type: '_http._tcp',
    host: 'h.local',
    port: 80,
    addresses: [],
    txt,
  });

  it('selects by name globs (case-insensitive) and TXT values', () => {
    const keep = instanceFilter(
      parseMdnsDetails({
        interfaces: ['eb0'],
        nameFilter: { include: ['Edge *'], exclude: ['*test*'] },
        txtFilter: { model: 'eb-*', secure: '' },
      }),
    );
    const txt: [string, string][] = [
      ['Model', 'eb-2'],
      ['secure', ''],
    ];
    assert.equal(keep(instance('edge cam', txt)), true);
    assert.equal(keep(instance('Edge test cam', txt)), false);
    assert.equal(keep(instance('Printer', txt)), false);
    assert.equal(keep(instance('Edge cam', [['model', 'other']])), false);
  });

  it('rejects bad details with messages that name the field', () => {
    const cases: [unknown, RegExp][] = [
      [
        { serviceTypes: ['_http._tcp', 'http'] },
        /^details\.serviceTypes\[1\]: must be a DNS-SD service type/,
      ],
      [{ interfaces: [] }, /^details\.interfaces: must have at least 1 items/],
      [
        { interfaces: ['a very long interface name'] },
        /^details\.interfaces\[0\]: must be a network interface name/,
      ],
      [{ maxInstances: 0 }, /^details\.maxInstances: must be at least 1/],
      [{ nameFilter: { only: [] } }, /^details\.nameFilter\.only: unknown field/],
    ];
    for (const [details, message] of cases)
      assert.throws(
        () => parseMdnsDetails(details),
        (err: unknown) => err instanceof InvalidDetailsError && message.test(err.message),
        String(message),
      );
    assert.deepEqual(parseMdnsDetails(undefined), { serviceTypes: [], maxInstances: 1024 });
  });
});

describe('the mDNS parsers under fuzzing', () => {
  it('survive 10,000 mutated packets with bounded state, and still see a real announcement after', () => {
    const cache = newCache(['_http._tcp.local'], 64);
    const seeds = [announcement(cam), announcement({ ...cam, name: 'Other', txt: {} })];
    let decoded = 0;
    for (const packet of mutatedPackets(seeds, 10_000, 0x5eed)) {
      let recs: unknown[];
      try {
        recs = records(packet);
      } catch {
        continue; // multicast-dns drops what dns-packet cannot decode, with a warning event
      }
      decoded += 1;
      cache.apply(recs, decoded);
      cache.expire(decoded);
      cache.questions(decoded);
      if (decoded % 50 === 0) for (const i of cache.instances()) toDevice(i);
    }
    assert.ok(decoded > 2500, `only ${decoded} packets decoded: the mutations are too crude`);
    assert.ok(cache.size <= 64);
    // Once what the fuzzing left has expired (TTLs are capped at a day), a real service is seen.
    const later = decoded + 86_400_001;
    cache.expire(later);
    assert.equal(cache.size, 0);
    cache.apply(records(announcement({ ...cam, name: 'After' })), later);
    assert.deepEqual(
      cache.instances().map((i) => i.name),
      ['After'],
    );
  });
});
