import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { eventually } from '../harness/devices.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { startUsbHotplug, type UsbHotplug } from '../harness/umockdev.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const NS = 'default';

interface DeviceList {
  items: {
    metadata: { name: string; labels?: Record<string, string> };
    spec: {
      id: string;
      shared: boolean;
      properties?: Record<string, string>;
    };
    status?: { nodes?: { name: string; deviceNodes?: { hostPath: string }[] }[] };
  }[];
}

describe('edgebridge agent --standalone with the usb handler under umockdev', () => {
  const testbeds: UsbHotplug[] = [];
  const clients: MqttClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await Promise.all(testbeds.map((t) => t.stop()));
  });

  it('registers a hot-plugged USB-serial adapter with its properties and tty, publishes attach/detach and state, and removes it after the grace period', async () => {
    const dir = scratchDir('agent-usb');
    const stateDir = path.join(dir, 'state');
    const config = path.join(dir, 'edgebridge.yaml');
    const brokerConfig = path.join(dir, 'broker.yaml');
    writeStandaloneConfig(config, {
      discoveries: [
        {
          namespace: NS,
          name: 'serial',
          spec: {
            handler: {
              name: 'usb',
              details: { udevRules: ['SUBSYSTEM=="tty", KERNEL=="ttyACM[0-9]*"'] },
            },
            gracePeriodSeconds: 1,
          },
        },
      ],
      secrets: [{ namespace: NS, name: 'broker-users', stringData: { ops: 'everything' } }],
    });
    writeFileSync(
      brokerConfig,
      stringify({
        users: [
          {
            name: 'ops',
            passwordFrom: { secretKeyRef: { namespace: NS, name: 'broker-users', key: 'ops' } },
            devices: [{ namespace: NS }],
          },
        ],
      }),
    );
    // A hub and a webcam are there from the start; the rule selects neither.
    const tb = await startUsbHotplug({
      devices: [
        { vendorId: 0x05e3, productId: 0x0608, port: '1', deviceClass: 0x09 },
        {
          vendorId: 0x046d,
          productId: 0x0825,
          port: '1.1',
          serial: 'CAM-1',
          interfaces: [{ interfaceClass: 0x0e, nodes: ['video4linux/video0'] }],
        },
      ],
      command: process.execPath,
      args: [
        CLI,
        'agent',
        '--node',
        'edge-1',
        '--http-port',
        '0',
        '--http-host',
        '127.0.0.1',
        '--broker-port',
        '0',
        '--broker-host',
        '127.0.0.1',
        '--broker-config',
        brokerConfig,
        '--standalone',
        '--config',
        config,
        '--state-dir',
        stateDir,
      ],
    });
    testbeds.push(tb);
    // The agent logs on stderr, which goes to the test bed's log file.
    const logLine = (msg: string) => (): Promise<Record<string, unknown> | undefined> =>
      Promise.resolve(
        readFileSync(tb.logFile, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.msg === msg),
      );
    const port = (await eventually('the node broker', logLine('node broker listening'))).port;
    await eventually('the USB listing', logLine('USB devices listed'));

    const mqtt = await connectAsync(`mqtt://127.0.0.1:${String(port)}`, {
      username: 'ops',
      password: 'everything',
      reconnectPeriod: 0,
    });
    clients.push(mqtt);
    const seen: { topic: string; payload: string }[] = [];
    mqtt.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
    await mqtt.subscribeAsync([`edgebridge/v1/${NS}/+/events`, `edgebridge/v1/${NS}/+/state`], {
      qos: 1,
    });

    const devices = async (): Promise<DeviceList> =>
      JSON.parse(
        (
          await run(process.execPath, [
            CLI,
            'devices',
            '--standalone',
            '--state-dir',
            stateDir,
            '-o',
            'json',
          ])
        ).stdout,
      ) as DeviceList;
    assert.deepEqual((await devices()).items, []);

    const added = await tb.add({
      vendorId: 0x2341,
      productId: 0x0043,
      port: '2',
      deviceClass: 0x02,
      manufacturer: 'Arduino',
      product: 'Uno',
      serial: 'ARD-1',
      interfaces: [{ interfaceClass: 0x02, driver: 'cdc_acm', nodes: ['tty/ttyACM0'] }],
    });
    const listed = await eventually('the Device', async () => {
      const list = await devices();
      return list.items.length === 1 ? list : undefined;
    });
    const device = listed.items[0];
    assert.equal(device?.spec.id, 'ARD-1');
    assert.equal(device.spec.shared, false);
    assert.deepEqual(device.spec.properties, {
      USB_VENDOR_ID: '2341',
      USB_PRODUCT_ID: '0043',
      USB_DEVICE_CLASS: '02',
      USB_MANUFACTURER: 'Arduino',
      USB_PRODUCT: 'Uno',
      USB_SERIAL: 'ARD-1',
      USB_BUS: '001',
      USB_ADDRESS: String(added.devnum).padStart(3, '0'),
      USB_PORT_PATH: '1-2',
      USB_DEVNODE: added.devnode,
      USB_DEVICE_NODES: '/dev/ttyACM0',
    });
    assert.deepEqual(
      device.status?.nodes?.[0]?.deviceNodes?.map((n) => n.hostPath),
      [added.devnode, '/dev/ttyACM0'],
    );
    assert.equal(device.metadata.labels?.['usb.edgebridge.io/vendor'], '2341');
    assert.equal(device.metadata.labels['usb.edgebridge.io/product'], '0043');

    const name = device.metadata.name;
    const on = (kind: string, match: (payload: string) => boolean) => () =>
      Promise.resolve(
        seen.find((m) => m.topic === `edgebridge/v1/${NS}/${name}/${kind}` && match(m.payload)),
      );
    const attach = await eventually(
      'the attach event',
      on('events', (p) => p.includes('"attach"')),
    );
    assert.equal(
      (JSON.parse(attach.payload) as { properties: { USB_SERIAL: string } }).properties.USB_SERIAL,
      'ARD-1',
    );
    await eventually(
      'online',
      on('state', (p) => p === 'online'),
    );

    await tb.remove(added);
    await eventually(
      'the detach event',
      on('events', (p) => p.includes('"detach"')),
    );
    await eventually(
      'offline',
      on('state', (p) => p === 'offline'),
    );
    await eventually('the Device to go after the grace period', async () =>
      (await devices()).items.length === 0 ? true : undefined,
    );
  });
});
