// Seeded fuzz of every convention's handle() and command(): valid message
// sequences with their topics, JSON fields and bytes damaged. Whatever comes,
// a convention answers with updates or a ConventionPayloadError, never another
// throw, and keeps no more devices than its cap.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConventionPayloadError,
  type Convention,
  type ConventionUpdate,
} from '../../../discovery-handlers/mqtt/convention.ts';
import { HomieConvention } from '../../../discovery-handlers/mqtt/conventions/homie.ts';
import { SparkplugConvention } from '../../../discovery-handlers/mqtt/conventions/sparkplug.ts';
import { TasmotaConvention } from '../../../discovery-handlers/mqtt/conventions/tasmota.ts';
import { Zigbee2MqttConvention } from '../../../discovery-handlers/mqtt/conventions/zigbee2mqtt.ts';
import { seededRandom } from '../../harness/seeded-random.ts';
import { bdSeq, encodePayload } from '../../peers/fixtures/sparkplug-payloads.ts';

const SEED = 0x5eed12;
const ROUNDS = 4000;
const CAP = 8;

const HOSTILE_STRINGS = [
  '../..',
  'a/+/b',
  '#',
  '+',
  'x\u0000y',
  'x'.repeat(10_000),
  '',
  '$SYS',
  '/',
  'bridge/devices',
  '%topic%',
];

class Fuzzer {
  readonly #random: () => number;
  constructor(seed: number) {
    this.#random = seededRandom(seed);
  }
  int(max: number): number {
    return Math.floor(this.#random() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.#random() < p;
  }

  hostileValue(depth = 0): unknown {
    switch (this.int(9)) {
      case 0:
        return this.pick(HOSTILE_STRINGS);
      case 1:
        return this.pick([0, -1, 1.5, 2 ** 64, Number.MAX_SAFE_INTEGER, 1e308]);
      case 2:
        return null;
      case 3:
        return this.chance(0.5);
      case 4:
        return depth > 3
          ? []
          : Array.from({ length: this.int(4) }, () => this.hostileValue(depth + 1));
      case 5:
        return depth > 3 ? {} : { [this.pick(HOSTILE_STRINGS)]: this.hostileValue(depth + 1) };
      case 6:
        return 'online';
      case 7:
        return { state: this.pick(['online', 'offline', 'maybe', 1]) };
      default:
        return String(this.int(1000));
    }
  }

  /** A copy of a JSON value with one field somewhere replaced by something hostile. */
  mutateJson(value: unknown, depth = 0): unknown {
    if (depth > 6 || this.chance(0.15)) return this.hostileValue();
    if (Array.isArray(value) && value.length > 0) {
      const copy: unknown[] = [...(value as unknown[])];
      const i = this.int(copy.length);
      copy[i] = this.mutateJson(copy[i], depth + 1);
      return copy;
    }
    if (typeof value === 'object' && value !== null) {
      const keys = Object.keys(value);
      if (keys.length === 0) return this.hostileValue();
      const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      const k = this.pick(keys);
      copy[k] = this.mutateJson(copy[k], depth + 1);
      return copy;
    }
    return this.hostileValue();
  }

  mutateBytes(b: Buffer): Buffer {
    const copy = Buffer.from(b);
    switch (this.int(5)) {
      case 0:
        for (let i = 0; i < 1 + this.int(4) && copy.length > 0; i++)
          copy[this.int(copy.length)] = this.int(256);
        return copy;
      case 1:
        return copy.subarray(0, this.int(copy.length + 1));
      case 2:
        return Buffer.from(Array.from({ length: this.int(64) }, () => this.int(256)));
      case 3:
        return Buffer.concat([
          copy,
          Buffer.alloc(this.int(2) === 0 ? 300 * 1024 : 2 * 1024 * 1024, 0x7b),
        ]);
      default:
        return Buffer.alloc(0);
    }
  }

  mutateTopic(topic: string): string {
    const levels = topic.split('/');
    switch (this.int(4)) {
      case 0:
        levels[this.int(levels.length)] = this.pick(HOSTILE_STRINGS);
        return levels.join('/');
      case 1:
        return `${topic}/${this.pick(HOSTILE_STRINGS)}`;
      case 2:
        return levels.slice(0, this.int(levels.length + 1)).join('/');
      default:
        return topic;
    }
  }
}

interface Sample {
  topic: string;
  /** A Buffer as is, a string as UTF-8, anything else as JSON. */
  payload: unknown;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** Each convention's valid messages, with ids varied so that caps are reached. */
const samples: Record<string, (f: Fuzzer) => Sample> = {
  homie: (f) => {
    const id = `dev-${f.int(CAP * 2)}`;
    return f.pick<Sample>([
      {
        topic: `homie/5/${id}/$state`,
        payload: f.pick(['ready', 'lost', 'init', 'disconnected', '']),
      },
      {
        topic: `homie/5/${id}/$description`,
        payload: {
          homie: '5.0',
          name: 'x',
          nodes: {
            n: {
              properties: {
                p: { datatype: f.pick(['float', 'integer', 'boolean', 'json']), settable: true },
              },
            },
          },
        },
      },
      { topic: `homie/5/${id}/n/p`, payload: f.pick(['1', '2.5', 'true', '{"a":1}', '']) },
      { topic: `homie/${id}/$homie`, payload: f.pick(['4.0.0', '']) },
      { topic: `homie/${id}/$nodes`, payload: 'n,m[]' },
      { topic: `homie/${id}/n/$properties`, payload: 'p,q' },
      { topic: `homie/${id}/n/p/$datatype`, payload: 'integer' },
      { topic: `homie/${id}/n/p`, payload: '42' },
    ]);
  },
  zigbee2mqtt: (f) => {
    const device = (i: number) => ({
      ieee_address: `0x${String(i).padStart(16, '0')}`,
      type: 'Router',
      friendly_name: `d${i}`,
      definition: {
        vendor: 'v',
        model: 'm',
        exposes: [{ property: 'state', access: 7, features: [] }],
      },
    });
    return f.pick<Sample>([
      {
        topic: 'zigbee2mqtt/bridge/devices',
        payload: Array.from({ length: f.int(CAP * 2) }, (_, i) => device(i)),
      },
      {
        topic: 'zigbee2mqtt/bridge/state',
        payload: f.pick(['online', 'offline', '{"state":"online"}']),
      },
      { topic: `zigbee2mqtt/d${f.int(CAP * 2)}/availability`, payload: { state: 'offline' } },
      { topic: `zigbee2mqtt/d${f.int(CAP * 2)}`, payload: { temperature: 20 } },
    ]);
  },
  tasmota: (f) => {
    const mac = `A4CF1200${String(f.int(CAP * 2)).padStart(4, '0')}`;
    const t = `t${f.int(CAP * 3)}`;
    return f.pick<Sample>([
      {
        topic: `tasmota/discovery/${mac}/config`,
        payload: {
          t,
          ft: f.pick(['%prefix%/%topic%/', '%topic%/%prefix%/', '%hostname%/%id%/%prefix%/']),
          tp: ['cmnd', 'stat', 'tele'],
          hn: 'h',
          mac,
          rl: [1, 1],
          ofln: 'Offline',
          onln: 'Online',
        },
      },
      { topic: `tasmota/discovery/${mac}/config`, payload: '' },
      {
        topic: `tasmota/discovery/${mac}/sensors`,
        payload: { sn: { Time: 'x', AM2301: { Temperature: 20 } } },
      },
      { topic: `tele/${t}/LWT`, payload: f.pick(['Online', 'Offline']) },
      { topic: `tele/${t}/SENSOR`, payload: { AM2301: { Temperature: 21 } } },
      { topic: `stat/${t}/RESULT`, payload: { POWER1: 'ON' } },
    ]);
  },
  sparkplug: (f) => {
    const node = `N${f.int(4)}`;
    const device = `D${f.int(CAP * 2)}`;
    const metrics = [
      {
        name: 'a',
        alias: 1,
        datatype: f.pick([1, 3, 4, 8, 9, 10, 11, 12, 17, 23, 32, 33]),
        int_value: f.int(1000),
      },
      {
        name: 'b',
        alias: 2,
        datatype: 16,
        dataset_value: { columns: ['c'], types: [3], rows: [{ elements: [{ int_value: 1 }] }] },
      },
    ];
    return f.pick<Sample>([
      { topic: `spBv1.0/G/NBIRTH/${node}`, payload: encodePayload([bdSeq(f.int(3)), ...metrics]) },
      { topic: `spBv1.0/G/NDEATH/${node}`, payload: encodePayload([bdSeq(f.int(3))]) },
      { topic: `spBv1.0/G/DBIRTH/${node}/${device}`, payload: encodePayload(metrics) },
      {
        topic: `spBv1.0/G/DDATA/${node}/${device}`,
        payload: encodePayload([{ alias: f.int(3), int_value: 5 }]),
      },
      {
        topic: `spBv1.0/G/NDATA/${node}`,
        payload: encodePayload([{ alias: 1, long_value: '18446744073709551615' }]),
      },
      { topic: `spBv1.0/G/DDEATH/${node}/${device}`, payload: encodePayload([]) },
      { topic: 'spBv1.0/STATE/host', payload: '{"online":true}' },
    ]);
  },
};

const conventions: Record<string, () => Convention> = {
  homie: () => new HomieConvention({ prefix: 'homie', maxDevices: CAP }),
  zigbee2mqtt: () => new Zigbee2MqttConvention({ prefix: 'zigbee2mqtt', maxDevices: CAP }),
  tasmota: () => new TasmotaConvention({ prefix: 'tasmota/discovery', maxDevices: CAP }),
  sparkplug: () => new SparkplugConvention({ prefix: 'spBv1.0', maxDevices: CAP }),
};

function toBuffer(payload: unknown): Buffer {
  if (Buffer.isBuffer(payload)) return payload;
  return typeof payload === 'string' ? Buffer.from(payload) : json(payload);
}

const hasWildcardOrNul = (topic: string) =>
  topic.includes('+') || topic.includes('#') || topic.includes('\0');

function checkUpdate(u: ConventionUpdate): string {
  if (u.kind === 'send') {
    assert.ok(
      !hasWildcardOrNul(u.topic),
      `a sent topic carries a wildcard: ${u.topic.slice(0, 80)}`,
    );
    return '';
  }
  const key = u.kind === 'device' ? u.device.key : u.key;
  assert.equal(typeof key, 'string');
  assert.ok(key.length > 0 && key.length <= 1024, 'keys stay short');
  if (u.kind === 'device') {
    for (const t of u.device.stateTopics)
      assert.ok(!hasWildcardOrNul(t), `a state topic carries a wildcard: ${t.slice(0, 80)}`);
  }
  return key;
}

describe('the conventions under fuzzing', () => {
  for (const name of Object.keys(conventions)) {
    it(`${name}: only updates or payload errors, and at most ${CAP} devices`, () => {
      const f = new Fuzzer(SEED + name.length);
      const c = (conventions[name] as () => Convention)();
      const sample = samples[name] as (f: Fuzzer) => Sample;
      const live = new Set<string>();
      let errors = 0;
      let updates = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const s = sample(f);
        let topic = s.topic;
        let payload = s.payload;
        const mutation = f.int(4);
        if (mutation === 1) topic = f.mutateTopic(topic);
        if (mutation === 2)
          payload = Buffer.isBuffer(payload) ? f.mutateBytes(payload) : f.mutateJson(payload);
        if (mutation === 3) payload = f.mutateBytes(toBuffer(payload));
        try {
          for (const u of c.handle(topic, toBuffer(payload))) {
            const key = checkUpdate(u);
            if (u.kind === 'send') continue;
            if (u.kind === 'device') live.add(key);
            if (u.kind === 'removed') live.delete(key);
            updates++;
          }
        } catch (err) {
          if (!(err instanceof ConventionPayloadError)) throw err;
          assert.ok(err.message.length < 400, 'error messages stay one short line');
          errors++;
        }
        assert.ok(live.size <= CAP, `${live.size} devices tracked, over the cap`);
        for (const filter of c.filters())
          assert.ok(!filter.includes('\u0000'), 'no NUL in a filter');
        assert.ok(c.filters().length <= 2 + 4 * CAP, 'filters stay bounded');
        try {
          const route = c.command(
            f.pick([...live, 'x', '../x']),
            f.pick(['set', 'POWER1', 'a', 'n/p', 'state', '#', 'x'.repeat(10_000)]),
            toBuffer(f.hostileValue()),
          );
          if (route !== undefined)
            assert.ok(
              !hasWildcardOrNul(route.topic),
              `a command topic carries a wildcard: ${route.topic.slice(0, 80)}`,
            );
        } catch (err) {
          if (!(err instanceof ConventionPayloadError)) throw err;
        }
      }
      // The sequences did something: both updates and refusals happened.
      assert.ok(updates > 100, `only ${updates} updates`);
      assert.ok(errors > 100, `only ${errors} payload errors`);
    });
  }
});
